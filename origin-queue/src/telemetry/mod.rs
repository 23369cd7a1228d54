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
//! Trace spans use the target [`TARGET`] (through [`trace_span!`]), which the log output
//! never shows: with tracing off, those spans are disabled at their call sites and cost
//! next to nothing. Their attributes are the route, the event id, the outcome (an error
//! code or the visitor's state) and batch sizes: never a token, a cookie or a header.

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The `tracing` target of every span meant for OpenTelemetry.
pub const TARGET: &str = "wr_trace";

/// A span for the traces (target [`TARGET`]), at level INFO; arguments as
/// `tracing::info_span!`.
#[macro_export]
macro_rules! trace_span {
    ($($arguments:tt)+) => {
        tracing::info_span!(target: "wr_trace", $($arguments)+)
    };
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
            "{endpoint_var}: `{endpoint}` is not an http:// URL (this build sends OTLP over \
             plain HTTP: point it at a collector or agent on the node or in the pod)"
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
    let sampler = sampler(set("OTEL_TRACES_SAMPLER"), set("OTEL_TRACES_SAMPLER_ARG"))?;
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()
        .map_err(|e| format!("the OTLP exporter: {e}"))?;
    let service = set("OTEL_SERVICE_NAME").unwrap_or_else(|| "origin-queue".into());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    Ok(Some(provider))
}

/// The sampler of `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` (default
/// `parentbased_always_on`, as the specification says).
fn sampler(name: Option<String>, argument: Option<String>) -> Result<Sampler, String> {
    let ratio = || -> Result<f64, String> {
        let Some(text) = &argument else {
            return Ok(1.0);
        };
        match text.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
            _ => Err(format!(
                "OTEL_TRACES_SAMPLER_ARG: `{text}` is not a ratio from 0 to 1"
            )),
        }
    };
    let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
    Ok(
        match name
            .as_deref()
            .map(str::trim)
            .unwrap_or("parentbased_always_on")
        {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::TraceIdRatioBased(ratio()?),
            "parentbased_always_on" => parent_based(Sampler::AlwaysOn),
            "parentbased_always_off" => parent_based(Sampler::AlwaysOff),
            "parentbased_traceidratio" => parent_based(Sampler::TraceIdRatioBased(ratio()?)),
            other => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER: `{other}` is not one of always_on, always_off, \
                     traceidratio, parentbased_always_on, parentbased_always_off, \
                     parentbased_traceidratio"
                ))
            }
        },
    )
}

/// Makes `span` the child of the W3C `traceparent` (and `tracestate`) of `headers`, if
/// they carry a valid one; otherwise it starts a trace of its own.
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if span.is_disabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    // Fails only if the span has already started a trace, which it has not here.
    let _ = span.set_parent(parent);
}

/// Reads the propagation headers (only those, by name) from a request.
struct HeaderExtractor<'h>(&'h HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        Vec::new()
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
        let cases: [(&[(&str, &str)], &str); 5] = [
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
        ];
        for (env, culprit) in cases {
            let refused = tracer_provider(&env_of(env)).err();
            assert!(
                refused.as_deref().is_some_and(|e| e.contains(culprit)),
                "{env:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn the_samplers_of_the_specification_are_understood() {
        let ratio = sampler(Some("traceidratio".into()), Some("0.01".into())).unwrap();
        assert!(matches!(ratio, Sampler::TraceIdRatioBased(r) if r == 0.01));
        assert!(matches!(
            sampler(None, None).unwrap(),
            Sampler::ParentBased(_)
        ));
        assert!(matches!(
            sampler(Some("always_off".into()), None).unwrap(),
            Sampler::AlwaysOff
        ));
    }

    #[test]
    fn only_a_valid_traceparent_is_followed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        use opentelemetry::trace::TraceContextExt;
        let remote = cx.span().span_context().clone();
        assert!(remote.is_valid() && remote.is_remote() && remote.is_sampled());
        headers.insert("traceparent", "00-zz-00-01".parse().unwrap());
        let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        assert!(!cx.span().span_context().is_valid());
    }
}
