//! Redis Cluster down: origin-queue answers 503 + Retry-After within its bounded
//! timeout, never hangs, and recovers by itself when Redis returns. Redis stalled
//! under many requests: beyond the in-flight cap, requests are shed at once.

use std::time::{Duration, Instant};

use serde_json::json;
use wr_tests::fixtures::now;
use wr_tests::http;
use wr_tests::processes::{OriginQueue, RedisCluster};
use wr_tests::redis_nodes::redis_cli;

/// The in-flight cap this test gives origin-queue.
const CAP: usize = 4;

#[test]
fn redis_outage_gives_fast_503s_and_recovery() {
    let cluster = RedisCluster::start();
    let cap = CAP.to_string();
    let q = OriginQueue::start(
        &cluster.nodes,
        &[("WR_REDIS_TIMEOUT_MS", "200"), ("WR_MAX_IN_FLIGHT", &cap)],
    );
    let t = now();
    q.put_event(
        "t-outage",
        &json!({"rate_per_second": 1, "burst": 1, "max_active": 10, "session_seconds": 60,
            "claim_seconds": 30, "abandon_seconds": 60, "opens_at": t + 3000, "closes_at": t + 7200}),
    );
    let joined = http::request(q.addr, "POST", "/v1/events/t-outage/join", &[], b"").unwrap();
    let ticket = joined.header("x-wr-ticket").unwrap().to_owned();

    cluster.stop();
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let r = status(q.addr, &ticket);
        slowest = slowest.max(started.elapsed());
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (503, Some("QUEUE_UNAVAILABLE"))
        );
        assert_eq!(r.header("retry-after"), Some("2"));
    }
    assert!(
        slowest < Duration::from_millis(1500),
        "a request took {slowest:?} while Redis was down"
    );
    assert_eq!(http::get(q.addr, "/readyz", &[]).unwrap().status, 503);
    assert_eq!(
        http::get(q.addr, "/healthz", &[]).unwrap().status,
        200,
        "liveness does not depend on Redis"
    );

    cluster.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    let position = loop {
        let r = status(q.addr, &ticket);
        if r.status == 200 {
            break r.json()["position"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "not recovered 30 s after Redis came back (last: {})",
            r.status
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(position, 1, "the place survived the outage");

    sheds_beyond_the_in_flight_cap(&cluster, &q, &ticket);
}

/// Every node paused for 800 ms while 24 status calls arrive at once: CAP of them wait
/// for Redis (503 `QUEUE_UNAVAILABLE` after the 200 ms timeout), the rest are shed at
/// once (503 `QUEUE_BUSY`); all carry `Retry-After`, and the service serves afterwards.
/// The status of the visitor holding `ticket`.
fn status(queue: std::net::SocketAddr, ticket: &str) -> http::Response {
    http::get(
        queue,
        "/v1/events/t-outage/status",
        &[("x-wr-ticket", ticket.as_bytes())],
    )
    .unwrap()
}

fn sheds_beyond_the_in_flight_cap(cluster: &RedisCluster, q: &OriginQueue, ticket: &str) {
    for node in &cluster.nodes {
        let port = node.rsplit(':').next().unwrap();
        assert_eq!(redis_cli(port, &["CLIENT", "PAUSE", "800", "ALL"]), "OK");
    }
    let answers: Vec<(u16, Option<String>, bool, Duration)> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..24)
            .map(|_| {
                s.spawn(|| {
                    let started = Instant::now();
                    let r = status(q.addr, ticket);
                    let retry = r.header("retry-after").is_some();
                    (r.status, r.error_code(), retry, started.elapsed())
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let count = |code: &str| {
        answers
            .iter()
            .filter(|(status, c, retry, _)| *status == 503 && c.as_deref() == Some(code) && *retry)
            .count()
    };
    let (busy, unavailable) = (count("QUEUE_BUSY"), count("QUEUE_UNAVAILABLE"));
    assert_eq!(
        busy + unavailable,
        answers.len(),
        "every call answered 503 + Retry-After while Redis was paused: {answers:?}"
    );
    assert!(
        (1..=CAP).contains(&unavailable) && busy >= answers.len() - CAP,
        "at most {CAP} calls waited for Redis, the rest were shed: {answers:?}"
    );
    let slowest_shed = answers
        .iter()
        .filter(|a| a.1.as_deref() == Some("QUEUE_BUSY"))
        .map(|a| a.3)
        .max()
        .unwrap();
    assert!(
        slowest_shed < Duration::from_millis(190),
        "shedding does not wait for the Redis timeout (slowest {slowest_shed:?})"
    );

    std::thread::sleep(Duration::from_millis(900));
    let r = status(q.addr, ticket);
    assert_eq!(r.status, 200, "serving again after the pause");
}
