//! Redis Cluster down: origin-queue answers 503 + Retry-After within its bounded
//! timeout, never hangs, and recovers by itself when Redis returns.

use std::time::{Duration, Instant};

use serde_json::json;
use wr_tests::fixtures::now;
use wr_tests::http;
use wr_tests::processes::{OriginQueue, RedisCluster};

#[test]
fn redis_outage_gives_fast_503s_and_recovery() {
    let cluster = RedisCluster::start();
    let q = OriginQueue::start(&cluster.nodes, &[("WR_REDIS_TIMEOUT_MS", "200")]);
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
        let r = http::get(
            q.addr,
            "/v1/events/t-outage/status",
            &[("x-wr-ticket", ticket.as_bytes())],
        )
        .unwrap();
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
        let r = http::get(
            q.addr,
            "/v1/events/t-outage/status",
            &[("x-wr-ticket", ticket.as_bytes())],
        )
        .unwrap();
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
}
