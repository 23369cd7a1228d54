//! Traces through the whole stack: origin-queue exports OTLP/HTTP (JSON) to a receiver
//! in this module ([`collector`]); a join through Envoy with the caller's sampled
//! `traceparent` is one trace, and requests without one export nothing.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use wr_tests::http;
use wr_tests::otlp::{Collector, Span};
use wr_tests::processes::Stack;

use crate::edge_walks::join_with;

/// The stack shared by this module's tests, one test at a time.
///
/// origin-queue exports traces to this module's [`collector`], only of requests whose
/// caller sent a sampled `traceparent` (`parentbased_traceidratio` at 0): the test of
/// traces sends one, the others none.
fn stack() -> (MutexGuard<'static, ()>, &'static Stack) {
    static STACK: OnceLock<Stack> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let stack = STACK.get_or_init(|| {
        let endpoint = collector().endpoint();
        Stack::up_with(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ])
    });
    (turn, stack)
}

/// The OTLP receiver origin-queue of this module's stack exports to.
fn collector() -> &'static Collector {
    static COLLECTOR: OnceLock<Collector> = OnceLock::new();
    COLLECTOR.get_or_init(Collector::start)
}

/// Joins the line through `edge` with `traceparent`; the ticket.
fn traced_join(edge: SocketAddr, traceparent: &str) -> String {
    join_with(edge, &[("traceparent", traceparent.as_bytes())])
}

/// Leaves the line (or frees the place) of `ticket`.
fn leave(edge: SocketAddr, ticket: &str) {
    let left = http::request(
        edge,
        "POST",
        "/v1/events/demo/leave",
        &[("x-wr-ticket", ticket.as_bytes())],
        b"",
    )
    .unwrap();
    assert_eq!(left.status, 200, "{}", String::from_utf8_lossy(&left.body));
}

/// A 32-hex-digit trace id and a 16-digit parent span id, random per call.
fn trace_ids() -> (String, String) {
    use std::hash::{BuildHasher, RandomState};
    let hex: String = (0..3)
        .map(|_| format!("{:016x}", RandomState::new().hash_one(Instant::now())))
        .collect();
    (hex[..32].to_owned(), hex[32..].to_owned())
}

/// The one span of `spans` named `name` whose parent is `parent`.
fn child<'s>(spans: &'s [Span], parent: &str, name: &str) -> &'s Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == parent && s.name == name)
        .collect();
    assert_eq!(found.len(), 1, "one {name} under {parent}: {spans:#?}");
    found[0]
}

/// A join sent through Envoy with the caller's W3C `traceparent` is one trace in the
/// collector: origin-queue's server span is the child of the caller's span, the batch
/// it joined is its child, and the Lua script's call the batch's; the spans carry the
/// route, the event and the outcome, and no export carries a token.
#[test]
fn a_join_through_envoy_is_one_trace_from_the_callers_traceparent() {
    let (_turn, stack) = stack();
    let (trace_id, parent) = trace_ids();
    let traceparent = format!("00-{trace_id}-{parent}-01");
    let ticket = traced_join(stack.edge, &traceparent);
    // Nobody is left in the shared line for the other tests' admissions (the leave
    // itself is not traced: no sampled traceparent).
    leave(stack.edge, &ticket);

    let complete = wr_tests::fixtures::wait_until(Duration::from_secs(15), || {
        let spans = collector().trace(&trace_id);
        ["POST /v1/events/{event}/join", "queue.batch", "join.lua"]
            .iter()
            .all(|name| spans.iter().any(|s| s.name == *name))
    });
    let spans = collector().trace(&trace_id);
    assert!(complete, "the trace did not arrive whole: {spans:#?}");

    let server = child(&spans, &parent, "POST /v1/events/{event}/join");
    assert_eq!(server.kind, 2, "a server span");
    assert_eq!(server.service, "origin-queue");
    assert_eq!(
        server.attribute("http.route"),
        Some("/v1/events/{event}/join")
    );
    assert_eq!(server.attribute("wr.event"), Some("demo"));
    assert_eq!(server.attribute("http.response.status_code"), Some("200"));
    let outcome = server.attribute("wr.outcome").unwrap_or_default();
    assert!(["waiting", "admitted"].contains(&outcome), "{outcome}");

    let batch = child(&spans, &server.span_id, "queue.batch");
    assert_eq!(batch.attribute("wr.event"), Some("demo"));
    assert_eq!(batch.attribute("wr.batch.kind"), Some("joins"));
    let script = child(&spans, &batch.span_id, "join.lua");
    assert_eq!(script.kind, 3, "a client span");
    assert_eq!(script.attribute("db.system.name"), Some("redis"));

    let exported = collector().raw_exports().concat();
    for secret in [ticket.as_str(), stack.admin_token.as_str()] {
        assert!(!exported.contains(secret), "a secret was exported");
    }
}

/// Requests whose caller sent no sampled `traceparent` are not exported under a
/// parent-based sampler at ratio 0: the sampler of `OTEL_TRACES_SAMPLER` is honoured.
#[test]
fn requests_without_a_sampled_traceparent_are_not_exported() {
    let (_turn, stack) = stack();
    let (trace_id, parent) = trace_ids();
    let unsampled = format!("00-{trace_id}-{parent}-00");
    let first = traced_join(stack.edge, &unsampled);
    leave(stack.edge, &first);
    // A sampled request after it: once its trace has arrived, the unsampled one would
    // have too (one exporter, spans in order).
    let (marker, marker_parent) = trace_ids();
    let sampled = format!("00-{marker}-{marker_parent}-01");
    let second = traced_join(stack.edge, &sampled);
    leave(stack.edge, &second);
    assert!(wr_tests::fixtures::wait_until(
        Duration::from_secs(15),
        || { collector().trace(&marker).len() >= 3 }
    ));
    assert!(collector().trace(&trace_id).is_empty());
    assert!(
        collector()
            .spans()
            .iter()
            .all(|s| !s.parent_span_id.is_empty()),
        "a trace that no sampled caller started"
    );
}
