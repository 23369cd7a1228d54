//! The Fastly adapter in Viceroy (Fastly's local Compute runtime) in front of the local
//! stack (real Redis Cluster, origin-queue, the demo backend): a visitor end to end with
//! the counters on the logging endpoint, the shipped manifest, the path judged as sent,
//! header limits, rate limits over Fastly's cache, missing settings, and the backend
//! ending a session.

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde_json::Value;
use wr_tests::backend_log::requests_under;
use wr_tests::http;
use wr_tests::processes::Stack;
use wr_tests::viceroy::{Manifest, Viceroy};

use crate::edge_walks::{
    edge_limits_headers, session_end_walk, visitor_walks_through, worker_config,
};

/// The stack shared by this module's tests, one test at a time (each pauses and
/// resumes the event).
fn stack() -> (MutexGuard<'static, ()>, &'static Stack) {
    static STACK: OnceLock<Stack> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    (turn, STACK.get_or_init(Stack::up))
}

/// The Fastly adapter in Viceroy in front of the stack: the backends `origin` and
/// `queue`, the edge configuration and `extra` entries in the Config Store, the key ring
/// in the Secret Store (from the environment). `keys` overrides the key ring (JSON).
fn serve_fastly(stack: &Stack, extra: &[(&'static str, &str)], keys: Option<&str>) -> Viceroy {
    let mut config_store = vec![
        ("config", worker_config().to_string()),
        ("counters_log", "wr_edge_counters".to_owned()),
    ];
    config_store.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let manifest = Manifest {
        origin: stack.backend,
        queue: stack.queue,
        config_store,
    };
    Viceroy::serve(&manifest, keys.unwrap_or(&stack.key_ring_json()))
}

#[test]
fn the_fastly_adapter_in_viceroy_puts_the_waiting_room_in_front_of_the_origin() {
    let (_turn, stack) = stack();
    let fastly = serve_fastly(stack, &[], None);
    visitor_walks_through(stack, fastly.addr, "fastly");
    // Every request's counters, one JSON line on the logging endpoint.
    let logged = fastly.logged("wr_edge_counters");
    let counted = |name: &str| {
        logged
            .iter()
            .filter(|line| {
                serde_json::from_str::<Value>(line).is_ok_and(|v| {
                    v["counters"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c == name))
                })
            })
            .count()
    };
    assert!(counted("wr_edge_admitted") >= 1, "{logged:?}");
    assert!(counted("wr_edge_redirected") >= 1, "{logged:?}");
    assert!(counted("wr_edge_queue_forwarded") >= 2, "{logged:?}");
}

/// The shipped `edge-fastly/fastly.toml` serves as it says: its configuration and
/// stores load (a protected path without a pass is refused by the edge itself, the
/// counters logged) whatever its backends are doing.
#[test]
fn the_shipped_fastly_manifest_serves() {
    let (_turn, stack) = stack();
    let manifest = wr_tests::fixtures::workspace_root().join("edge-fastly/fastly.toml");
    let fastly = Viceroy::serve_file(&manifest, &stack.key_ring_json());
    let r = http::get(fastly.addr, "/reserve", &[]).unwrap();
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (403, Some("NOT_ADMITTED"))
    );
    assert!(wr_tests::fixtures::wait_until(
        Duration::from_secs(5),
        || {
            fastly
                .logged("wr_edge_counters")
                .iter()
                .any(|l| l.contains("wr_edge_denied"))
        }
    ));
}

/// The SDK resolves `..` (and `%2e%2e`) segments when it parses a URL; the adapter
/// judges the path as the client sent it, which the origin would get too: a path not in
/// normal form is refused, as by the Envoy filter, and reaches nobody (resolved, these
/// would have been ordinary paths of the origin, forwarded without a pass).
#[test]
fn the_fastly_adapter_judges_the_path_as_sent() {
    let (_turn, stack) = stack();
    let fastly = serve_fastly(stack, &[], None);
    for path in [
        "/reserve/../judged-a",
        "/reserve/%2e%2e/judged-b",
        "/reserve/%2E%2E/judged-c",
    ] {
        let r = http::get(fastly.addr, path, &[]).unwrap();
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (400, Some("PATH_NOT_NORMALIZED")),
            "{path}"
        );
    }
    assert!(requests_under(stack.backend, "/judged").is_empty());
    assert!(requests_under(stack.backend, "/reserve/..").is_empty());
    assert!(requests_under(stack.backend, "/reserve/%2").is_empty());
}

/// Viceroy hands the adapter large headers whole; the core's own limit
/// (`max_request_header_bytes`, 32 KiB here) is the one that applies, with its 431.
#[test]
fn in_viceroy_the_edge_limits_headers() {
    let (_turn, stack) = stack();
    let fastly = serve_fastly(stack, &[], None);
    edge_limits_headers(stack, fastly.addr, "/static/fastly-big");
}

/// Compute keeps nothing between requests; the adapter keeps the core's buckets in
/// Fastly's cache, which every request of the service in a POP (here: of this Viceroy)
/// shares, so the core's own limits bind: requests from one address (burst 100 here) to
/// a protected path without a pass meet a 429 with `Retry-After`.
#[test]
fn in_viceroy_the_rate_limits_are_the_cache_s() {
    let (_turn, stack) = stack();
    let fastly = serve_fastly(stack, &[], None);
    let answers: Vec<http::Response> = (0..300)
        .map_while(|_| http::get(fastly.addr, "/reserve", &[]).ok())
        .collect();
    let limited = answers.iter().position(|r| r.status == 429);
    assert!(
        limited.is_some_and(|at| answers[at].header("retry-after").is_some()),
        "no 429 in {} answers: {:?}",
        answers.len(),
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // Not before the burst is spent (a lost update can only let more through).
    assert!(limited.is_some_and(|at| at >= 100), "{limited:?}");
    assert!(answers.iter().all(|r| r.status == 403 || r.status == 429));
}

/// A service without its key ring answers 503 `EDGE_NOT_CONFIGURED` and forwards
/// nothing; so does a rate-limiter policy it cannot honour.
#[test]
fn the_fastly_adapter_without_its_settings_refuses_everything() {
    let (_turn, stack) = stack();
    for (extra, keys) in [
        (&[][..], Some("")),
        (
            &[(
                "rate_limiter",
                r#"{"requests_per_second": 5, "window_seconds": 5}"#,
            )][..],
            None,
        ),
    ] {
        let fastly = serve_fastly(stack, extra, keys);
        let r = http::get(fastly.addr, "/static/unconfigured", &[]).unwrap();
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (503, Some("EDGE_NOT_CONFIGURED"))
        );
    }
    assert!(requests_under(stack.backend, "/static/unconfigured").is_empty());
}

#[test]
fn the_backend_ends_a_session_through_the_fastly_adapter() {
    let (_turn, stack) = stack();
    let fastly = serve_fastly(stack, &[], None);
    session_end_walk(stack, fastly.addr, "fastly");
    let reported = || {
        fastly
            .logged("wr_edge_counters")
            .iter()
            .filter(|line| line.contains("wr_edge_session_end_reported"))
            .count()
    };
    // The line is written after the response (and the report) went out.
    assert!(wr_tests::fixtures::wait_until(
        Duration::from_secs(5),
        || reported() >= 1
    ));
    assert_eq!(reported(), 1);
}

/// What an attacker sends the adapter gets an answer of the edge's, never a 5xx, and
/// nothing unjudged reaches the origin: repeated or empty hosts, a URL longer than the
/// adapter reads, odd escapes, a chunked body on a join, two requests pipelined.
#[test]
fn hostile_requests_get_the_edge_s_answers_not_5xx() {
    let (_turn, stack) = stack();
    let fastly = serve_fastly(stack, &[], None);
    let long = format!("/static/hostile-long?{}", "a".repeat(20 * 1024));
    let cases: Vec<(String, Vec<u8>)> = vec![
        (
            "two hosts".into(),
            b"GET /static/hostile-hosts HTTP/1.1\r\nhost: a\r\nhost: b\r\nconnection: close\r\n\r\n".to_vec(),
        ),
        (
            "a URL over 16 KiB".into(),
            format!("GET {long} HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n").into_bytes(),
        ),
        (
            "an escaped NUL and slashes".into(),
            b"GET /reserve/%00/..%2f/x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n".to_vec(),
        ),
        (
            "a chunked join".into(),
            b"POST /v1/events/demo/join HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n".to_vec(),
        ),
    ];
    for (what, raw) in &cases {
        let r = http::send_raw(fastly.addr, raw).unwrap_or_else(|e| panic!("{what}: {e}"));
        eprintln!("{what}: {} {:?}", r.status, r.error_code());
        assert!(r.status < 500, "{what}: {} {:?}", r.status, r.error_code());
    }
    // An empty host never gets to the adapter: Viceroy closes the connection unanswered
    // (Fastly's own front refuses such a request too), and nothing is forwarded.
    let empty = b"GET /static/hostile-empty HTTP/1.1\r\nhost:\r\nconnection: close\r\n\r\n";
    if let Ok(r) = http::send_raw(fastly.addr, empty) {
        assert!(r.status < 500, "an empty host: {}", r.status);
    }
    // Two requests on one connection, back to back: each answered by the edge.
    let pipelined = b"GET /reserve HTTP/1.1\r\nhost: a\r\n\r\nGET /reserve HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n";
    let mut conn = std::net::TcpStream::connect(fastly.addr).unwrap();
    std::io::Write::write_all(&mut conn, pipelined).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut conn, &mut answer).unwrap();
    assert_eq!(answer.matches("HTTP/1.1 403").count(), 2, "{answer}");
    assert!(requests_under(stack.backend, "/static/hostile").is_empty());
}
