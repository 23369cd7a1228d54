//! Logs and OpenTelemetry traces: the `tracing` subscriber of `serve`.
//!
//! Logs are JSON lines on standard output, filtered by `WR_LOG` (default `info`).
//!
//! Traces are off unless an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); then the standard `OTEL_*` variables apply:
//! `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, the default, or `http/json`),
//! `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`, `OTEL_SERVICE_NAME` (default
//! `origin-queue`), `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`; `OTEL_SDK_DISABLED=true`
//! or `OTEL_TRACES_EXPORTER=none` turn them off again. A value this service cannot honour
//! (gRPC, an `https` endpoint, an unknown sampler, a ratio outside 0–1) stops it at
//! start with the reason, rather than being ignored.
//!
//! Trace spans use the target [`TARGET`] (through `trace_span!`), which the log output
//! never shows: with tracing off, those spans are disabled at their call sites and cost
//! next to nothing; with it on, a request the sampler passes over makes none
//! (`sampling`). Their attributes are the route, the event id, the outcome (an error
//! code or the visitor's state) and batch sizes: never a token, a cookie or a header.

mod sampling;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The `tracing` target of every span meant for OpenTelemetry.
pub const TARGET: &str = "wr_trace";

pub use sampling::{request_parent, RequestSampler};

/// A span for the traces (target [`TARGET`]), at level INFO; arguments as
/// `tracing::info_span!`.
#[macro_export]
macro_rules! trace_span {
    ($($arguments:tt)+) => {
        tracing::info_span!(target: "wr_trace", $($arguments)+)
    };
}

/// Whether the current span is one of ours (a traced request's): the place to hang a
/// child span. Not so while traces are off, in a request not sampled, or under some
/// library's span (whose parent chain the traces never see).
pub fn in_traced_request() -> bool {
    tracing::Span::current()
        .metadata()
        .is_some_and(|m| m.target() == TARGET)
}

/// What a request came to, for its span: an error code (`QUEUE_BUSY`) or a visitor's
/// state (`waiting`, `admitted`). Handlers and [`crate::api::ApiError`] put it in the
/// response's extensions; the request's span records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome(pub &'static str);

/// The running exporter, if traces are on; [`Telemetry::shutdown`] sends what is left.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether traces are exported.
    pub fn tracing(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the spans still buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                eprintln!("origin-queue: the trace exporter did not flush: {e}");
            }
        }
    }
}

/// Installs the subscriber: JSON logs, and the OTLP exporter if the environment asks
/// for it. Errors name the variable at fault.
pub fn init(env: &dyn Fn(&str) -> Option<String>) -> Result<Telemetry, String> {
    let logs = EnvFilter::try_new(env("WR_LOG").unwrap_or_else(|| "info".into()))
        .map_err(|e| format!("WR_LOG: {e}"))?
        .add_directive(
            format!("{TARGET}=off")
                .parse()
                .map_err(|e| format!("{e}"))?,
        );
    let fmt = tracing_subscriber::fmt::layer().json().with_filter(logs);
    let provider = tracer_provider(env)?;
    let spans = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("origin-queue"))
            .with_filter(Targets::new().with_target(TARGET, tracing::Level::INFO))
    });
    tracing_subscriber::registry()
        .with(fmt)
        .with(spans)
        .try_init()
        .map_err(|e| format!("cannot install the log subscriber: {e}"))?;
    Ok(Telemetry { provider })
}

/// The tracer provider the environment asks for; `None` when traces are off.
fn tracer_provider(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SdkTracerProvider>, String> {
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    match set("OTEL_TRACES_EXPORTER").as_deref().map(str::trim) {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(format!(
                "OTEL_TRACES_EXPORTER: only `otlp` or `none` are supported, not `{other}`"
            ))
        }
    }
    let endpoint_var = [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .find(|name| set(name).is_some());
    let Some(endpoint_var) = endpoint_var else {
        return Ok(None);
    };
    let endpoint = set(endpoint_var).unwrap_or_default();
    if !endpoint.trim().starts_with("http://") {
        return Err(format!(
            "{endpoint_var}: `{}` is not an http:// URL (this build sends OTLP over \
             plain HTTP: point it at a collector or agent on the node or in the pod)",
            without_credentials(&endpoint)
        ));
    }
    let protocol = [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .into_iter()
    .find_map(|name| set(name).map(|value| (name, value)));
    let protocol = match protocol {
        None => opentelemetry_otlp::Protocol::HttpBinary,
        Some((_, value)) if value.trim() == "http/protobuf" => {
            opentelemetry_otlp::Protocol::HttpBinary
        }
        Some((_, value)) if value.trim() == "http/json" => opentelemetry_otlp::Protocol::HttpJson,
        Some((name, value)) => {
            return Err(format!(
                "{name}: `{value}` is not supported; use http/protobuf or http/json"
            ))
        }
    };
    let sampler =
        RequestSampler::from_settings(set("OTEL_TRACES_SAMPLER"), set("OTEL_TRACES_SAMPLER_ARG"))?;
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()
        .map_err(|e| format!("the OTLP exporter: {e}"))?;
    let service = set("OTEL_SERVICE_NAME").unwrap_or_else(|| "origin-queue".into());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        // Each request's sampler has decided already (`request_parent`): a span made is
        // a span wanted.
        .with_sampler(Sampler::AlwaysOn)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    sampling::install(sampler);
    Ok(Some(provider))
}

/// `url` with any `user:password@` taken out, for an error message.
fn without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://…@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn traces_are_off_without_an_endpoint() {
        assert!(tracer_provider(&env_of(&[])).unwrap().is_none());
        let disabled = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ];
        assert!(tracer_provider(&env_of(&disabled)).unwrap().is_none());
        let none = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ];
        assert!(tracer_provider(&env_of(&none)).unwrap().is_none());
    }

    #[test]
    fn settings_it_cannot_honour_are_refused_by_name() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                &[
                    (
                        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                        "http://127.0.0.1:4318",
                    ),
                    ("OTEL_TRACES_SAMPLER", "sometimes"),
                ],
                "OTEL_TRACES_SAMPLER",
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
                ],
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (
                &[("OTEL_TRACES_EXPORTER", "jaeger")],
                "OTEL_TRACES_EXPORTER",
            ),
            (
                &[(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "https://user:s3cret@collector",
                )],
                "https://…@collector",
            ),
        ];
        for (env, culprit) in cases {
            let refused = tracer_provider(&env_of(env)).err();
            assert!(
                refused.as_deref().is_some_and(|e| e.contains(culprit)),
                "{env:?}: {refused:?}"
            );
            assert!(!refused.unwrap_or_default().contains("s3cret"));
        }
    }
}
