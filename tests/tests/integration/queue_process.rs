//! origin-queue as a process: it refuses to start without Redis, shuts down gracefully
//! on SIGTERM, and when killed (SIGKILL, no graceful shutdown) and started again during
//! a sale nobody loses their place and the order of the line is unchanged. Everything
//! that matters lives in Redis and in the visitors' signed tickets, nothing in the
//! process.

use std::time::Duration;

use serde_json::json;
use wr_tests::fixtures::now;
use wr_tests::http;
use wr_tests::processes::{origin_queue_bin, redis_cluster, OriginQueue};

fn positions(q: &OriginQueue, tickets: &[String]) -> Vec<u64> {
    tickets
        .iter()
        .map(|ticket| {
            let r = http::get(
                q.addr,
                "/v1/events/t-restart/status",
                &[("x-wr-ticket", ticket.as_bytes())],
            )
            .unwrap();
            assert_eq!(r.status, 200, "{:?}", r.json());
            r.json()["position"].as_u64().expect("waiting")
        })
        .collect()
}

#[test]
fn killing_origin_queue_loses_nobody_s_place() {
    let q = OriginQueue::start(redis_cluster(), &[]);
    let t = now();
    // Scheduled: the line only grows, so positions must come back exactly.
    q.put_event(
        "t-restart",
        &json!({"rate_per_second": 10, "burst": 10, "max_active": 100, "session_seconds": 60,
            "claim_seconds": 30, "abandon_seconds": 600, "opens_at": t + 3000, "closes_at": t + 7200}),
    );
    let tickets: Vec<String> = (0..60)
        .map(|_| {
            let r = http::request(q.addr, "POST", "/v1/events/t-restart/join", &[], b"").unwrap();
            assert_eq!(r.status, 200);
            r.header("x-wr-ticket").unwrap().to_owned()
        })
        .collect();
    let before = positions(&q, &tickets);
    assert_eq!(before, (1..=60).collect::<Vec<u64>>());

    drop(q); // SIGKILL
    let q = OriginQueue::start(redis_cluster(), &[]);
    assert_eq!(positions(&q, &tickets), before, "places after the restart");
    let r = http::request(
        q.addr,
        "POST",
        "/v1/events/t-restart/join",
        &[("x-wr-ticket", tickets[10].as_bytes())],
        b"",
    )
    .unwrap();
    assert_eq!(r.json()["position"], 11, "re-joining keeps the place");
}

#[test]
fn without_redis_or_keys_it_refuses_to_start_and_says_why() {
    let out = std::process::Command::new(origin_queue_bin())
        .arg("serve")
        .env("WR_KEYS", wr_tests::fixtures::KEYS_JSON)
        .env("WR_REDIS_NODES", "127.0.0.1:1")
        .env("WR_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach Redis Cluster"),
        "{out:?}"
    );
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut q = OriginQueue::start(redis_cluster(), &[]);
    assert_eq!(http::get(q.addr, "/healthz", &[]).unwrap().status, 200);
    let status = q
        .terminate(Duration::from_secs(10))
        .expect("still running 10 s after SIGTERM");
    assert!(status.success(), "{status}");
}
