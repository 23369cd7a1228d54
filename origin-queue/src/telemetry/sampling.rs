//! Which requests are traced: the specification's samplers (`OTEL_TRACES_SAMPLER`),
//! decided once per request, from its `traceparent`, before any span is made. A request
//! not sampled makes no span at all: with the SDK deciding instead, every request paid
//! for spans that were then dropped (a third of the status throughput at 1 %, see
//! BENCHMARKS.md, "What tracing costs").

use std::sync::OnceLock;

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// One of the specification's samplers.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestSampler {
    /// Every request.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// This share of traces, by trace id (the same traces as other services using it).
    Ratio(f64),
    /// As the caller's `traceparent` says when there is one; otherwise the inner one.
    ParentBased(Box<RequestSampler>),
}

/// The sampler in force; unset while traces are off.
static SAMPLER: OnceLock<RequestSampler> = OnceLock::new();

/// Puts `sampler` in force (once; later calls change nothing).
pub(super) fn install(sampler: RequestSampler) {
    let _ = SAMPLER.set(sampler);
}

impl RequestSampler {
    /// The sampler of `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` (default
    /// `parentbased_always_on`, as the specification says); an error names the variable.
    pub fn from_settings(
        name: Option<String>,
        argument: Option<String>,
    ) -> Result<RequestSampler, String> {
        let ratio = || -> Result<RequestSampler, String> {
            let Some(text) = &argument else {
                return Ok(RequestSampler::Ratio(1.0));
            };
            match text.trim().parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(RequestSampler::Ratio(r)),
                _ => Err(format!(
                    "OTEL_TRACES_SAMPLER_ARG: `{text}` is not a ratio from 0 to 1"
                )),
            }
        };
        let parent_based = |root| RequestSampler::ParentBased(Box::new(root));
        let name = name.as_deref().map(str::trim);
        Ok(match name.unwrap_or("parentbased_always_on") {
            "always_on" => RequestSampler::AlwaysOn,
            "always_off" => RequestSampler::AlwaysOff,
            "traceidratio" => ratio()?,
            "parentbased_always_on" => parent_based(RequestSampler::AlwaysOn),
            "parentbased_always_off" => parent_based(RequestSampler::AlwaysOff),
            "parentbased_traceidratio" => parent_based(ratio()?),
            other => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER: `{other}` is not one of always_on, always_off, \
                     traceidratio, parentbased_always_on, parentbased_always_off, \
                     parentbased_traceidratio"
                ))
            }
        })
    }

    /// Whether a request whose caller's span is `parent` (if it sent a valid one) is
    /// traced.
    pub fn samples(&self, parent: Option<&SpanContext>) -> bool {
        match self {
            RequestSampler::AlwaysOn => true,
            RequestSampler::AlwaysOff => false,
            RequestSampler::Ratio(ratio) => {
                // As the SDK's TraceIdRatioBased: the trace id's low 63 bits against the
                // ratio, so every service agrees on a trace; a new trace's id is random.
                let low = match parent {
                    Some(p) => {
                        let bytes = p.trace_id().to_bytes();
                        u64::from_be_bytes(bytes[8..].try_into().unwrap_or([0; 8]))
                    }
                    None => rand::random::<u64>(),
                };
                (low >> 1) < (ratio * (1u64 << 63) as f64) as u64
            }
            RequestSampler::ParentBased(root) => match parent {
                Some(p) => p.is_sampled(),
                None => root.samples(None),
            },
        }
    }
}

/// The parent of a request's trace if the request is to be traced: the caller's span
/// (a valid W3C `traceparent`, with its `tracestate`), or a new trace (an empty
/// context). `None`: not traced (or traces are off), and the request makes no span.
pub fn request_parent(headers: &HeaderMap) -> Option<Context> {
    let sampler = SAMPLER.get()?;
    let context = if headers.contains_key("traceparent") {
        TraceContextPropagator::new().extract(&HeaderExtractor(headers))
    } else {
        Context::new()
    };
    let remote = context.span().span_context().clone();
    let parent = remote.is_valid().then_some(&remote);
    sampler.samples(parent).then_some(context)
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

    fn parent(traceparent: &str) -> Option<SpanContext> {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", traceparent.parse().unwrap());
        let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        let remote = cx.span().span_context().clone();
        remote.is_valid().then_some(remote)
    }

    const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const NOT_SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

    #[test]
    fn the_samplers_of_the_specification_are_understood() {
        let from = |name: &str, arg: Option<&str>| {
            RequestSampler::from_settings(Some(name.into()), arg.map(Into::into)).unwrap()
        };
        assert_eq!(
            from("traceidratio", Some("0.01")),
            RequestSampler::Ratio(0.01)
        );
        assert_eq!(
            RequestSampler::from_settings(None, None).unwrap(),
            RequestSampler::ParentBased(Box::new(RequestSampler::AlwaysOn))
        );
        assert_eq!(from("always_off", None), RequestSampler::AlwaysOff);
    }

    #[test]
    fn a_parent_based_sampler_follows_the_callers_flag() {
        let sampler = RequestSampler::ParentBased(Box::new(RequestSampler::AlwaysOff));
        assert!(sampler.samples(parent(SAMPLED).as_ref()));
        assert!(!sampler.samples(parent(NOT_SAMPLED).as_ref()));
        assert!(!sampler.samples(None));
    }

    #[test]
    fn a_ratio_samples_about_its_share_and_ignores_the_callers_flag() {
        let tenth = RequestSampler::Ratio(0.1);
        let hits = (0..20_000).filter(|_| tenth.samples(None)).count();
        assert!((1_600..2_400).contains(&hits), "{hits}");
        let all = RequestSampler::Ratio(1.0);
        assert!(all.samples(parent(NOT_SAMPLED).as_ref()));
        assert!(!RequestSampler::Ratio(0.0).samples(parent(SAMPLED).as_ref()));
    }

    #[test]
    fn only_a_valid_traceparent_is_a_parent() {
        let remote = parent(SAMPLED).expect("valid");
        assert!(remote.is_remote() && remote.is_sampled());
        assert!(parent("00-zz-00-01").is_none());
    }
}
