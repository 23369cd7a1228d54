//! origin-queue against a real six-node Redis Cluster: join, exact position, strict
//! FIFO admission under concurrency, the token bucket, claim windows, abandonment,
//! leave, the admin API and input validation. The service is built in-process (see
//! `wr_tests::in_process`); `queue_process` has the tests that need a process.

use std::collections::HashSet;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wr_pass::{TokenKind, Validity};
use wr_tests::fixtures::{keys, now, wait_until};
use wr_tests::http::{Response, Target};
use wr_tests::in_process::{InProcessQueue, InProcessRouter};
use wr_tests::processes::{redis_cluster, ADMIN_TOKEN};
use wr_tests::queue_client::{self, admin, configure, join, status};
use wr_tests::redis_nodes;
use wr_tests::redis_nodes::wait_for_admission_step;

/// origin-queue's router in-process on the shared cluster: every test here but the
/// backlog's needs no socket.
fn queue() -> InProcessRouter {
    InProcessRouter::start(redis_cluster(), &[])
}

/// An admission step of `event` ran after now (within 5 s): the queue has had its
/// chance to admit, so whatever a test then finds not done was decided, not pending.
fn stepped(event: &str) -> bool {
    wait_for_admission_step(redis_cluster(), event, Duration::from_secs(5))
}

#[test]
fn join_gives_an_exact_position_and_rejoining_keeps_the_place() {
    let q = &queue();
    configure(
        q,
        "t-join",
        json!({"opens_at": now() + 3000, "closes_at": now() + 7200}),
    );
    let (first, t1) = join(q, "t-join", None);
    let (second, _) = join(q, "t-join", None);
    assert_eq!(
        (first["status"].as_str(), first["position"].as_u64()),
        (Some("waiting"), Some(1))
    );
    assert_eq!(second["position"], 2);
    for field in [
        "eta_seconds",
        "eta_ms",
        "eta_range_seconds",
        "eta_confidence",
        "poll_after_ms",
        "visitor",
    ] {
        assert!(!first[field].is_null(), "{field} missing: {first}");
    }
    // Nobody is admitted before the event opens, in 3,000 s: the wait starts with that.
    let opening_wait = 2_990..=3_001;
    assert!(
        opening_wait.contains(&first["eta_seconds"].as_u64().unwrap()),
        "{first}"
    );
    // Joining again with the ticket returns the same place, never a second one.
    let (again, _) = join(q, "t-join", Some(&t1));
    assert_eq!(
        (again["visitor"].clone(), again["position"].as_u64()),
        (first["visitor"].clone(), Some(1))
    );
    // So do many at once (joins arriving together share one script call, where the
    // same visitor may come several times).
    let together: Vec<Value> = thread::scope(|s| {
        let calls: Vec<_> = (0..24)
            .map(|_| s.spawn(|| join(q, "t-join", Some(&t1)).0))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for again in &together {
        assert_eq!(
            (again["visitor"].clone(), again["position"].as_u64()),
            (first["visitor"].clone(), Some(1)),
            "{together:?}"
        );
    }
    let s = status(q, "t-join", &t1);
    assert_eq!(
        (
            s.status,
            s.json()["position"].as_u64(),
            s.json()["waiting"].as_u64()
        ),
        (200, Some(1), Some(2))
    );
    assert!(
        opening_wait.contains(&s.json()["eta_seconds"].as_u64().unwrap()),
        "{:?}",
        s.json()
    );
    // The event is scheduled: nobody is admitted before it opens (an admission step
    // has had its chance).
    assert!(stepped("t-join"));
    assert_eq!(status(q, "t-join", &t1).json()["status"], "waiting");
    let public = q.get("/v1/events/t-join", &[]).unwrap().json();
    assert_eq!(
        (public["state"].as_str(), public["waiting"].as_u64()),
        (Some("scheduled"), Some(2))
    );
}

#[test]
fn admission_is_strictly_fifo_under_concurrent_joins() {
    let q = &queue();
    configure(
        q,
        "t-fifo",
        json!({"rate_per_second": 25, "burst": 1, "opens_at": now() + 3000}),
    );
    // 200 visitors join at once from 8 threads.
    let joined: Vec<(Value, String)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| (0..25).map(|_| join(q, "t-fifo", None)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut visitors: Vec<(u64, String)> = joined
        .into_iter()
        .map(|(body, ticket)| (body["position"].as_u64().unwrap(), ticket))
        .collect();
    visitors.sort();
    // Positions at join are exactly 1..=200: every join got its own place, in order.
    assert_eq!(
        visitors.iter().map(|v| v.0).collect::<Vec<_>>(),
        (1..=200).collect::<Vec<_>>()
    );
    // Current positions agree with the join order.
    for (i, (_, ticket)) in visitors.iter().enumerate().step_by(37) {
        assert_eq!(
            status(q, "t-fifo", ticket).json()["position"].as_u64(),
            Some(i as u64 + 1)
        );
    }
    // Open the event and watch: polling from the back of the line to the front, once
    // someone behind is seen admitted, nobody ahead may still be waiting.
    configure(q, "t-fifo", json!({"rate_per_second": 25, "burst": 1}));
    let mut admitted = HashSet::new();
    let mut inversions = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while admitted.len() < visitors.len() && Instant::now() < deadline {
        let mut seen_admitted_behind = false;
        for (i, (_, ticket)) in visitors.iter().enumerate().rev() {
            if admitted.contains(&i) {
                seen_admitted_behind = true;
                continue;
            }
            let body = status(q, "t-fifo", ticket).json();
            match body["status"].as_str() {
                Some("admitted") => {
                    admitted.insert(i);
                    seen_admitted_behind = true;
                }
                Some("waiting") if seen_admitted_behind => inversions += 1,
                Some("waiting") => {}
                other => panic!("visitor {i}: unexpected status {other:?}: {body}"),
            }
        }
    }
    assert_eq!(inversions, 0, "FIFO inversions");
    assert_eq!(
        admitted.len(),
        visitors.len(),
        "not everybody was admitted in 30 s"
    );
    // Nobody was admitted twice: grants counted by the server equal distinct visitors.
    let stats = admin(q, "GET", "/v1/admin/events/t-fifo/stats", &json!({})).json();
    assert_eq!(stats["admitted_total"], 200, "{stats}");
    assert_eq!(
        (stats["active"].as_u64(), stats["granted"].as_u64()),
        (Some(200), Some(0))
    );
}

#[test]
fn admission_follows_the_rate_and_pauses() {
    let q = &queue();
    configure(
        q,
        "t-rate",
        json!({"rate_per_second": 10, "burst": 1, "opens_at": now() + 3000}),
    );
    let tickets: Vec<String> = (0..80).map(|_| join(q, "t-rate", None).1).collect();
    configure(q, "t-rate", json!({"rate_per_second": 10, "burst": 1}));
    let admitted_total = || {
        admin(q, "GET", "/v1/admin/events/t-rate/stats", &json!({})).json()["admitted_total"]
            .as_u64()
            .unwrap()
    };
    assert!(
        wait_until(Duration::from_secs(3), || admitted_total() > 0),
        "admission did not start"
    );
    let (t0, a0) = (Instant::now(), admitted_total());
    thread::sleep(Duration::from_secs(3));
    let (elapsed, admitted) = (t0.elapsed().as_secs_f64(), admitted_total() - a0);
    let rate = admitted as f64 / elapsed;
    assert!(
        (7.0..=12.0).contains(&rate),
        "{admitted} admitted in {elapsed:.2}s at 10/s configured"
    );
    // Paused: no more admissions.
    assert_eq!(
        admin(q, "POST", "/v1/admin/events/t-rate/pause", &json!({})).status,
        200
    );
    let before = admin(q, "GET", "/v1/admin/events/t-rate/stats", &json!({})).json()
        ["admitted_total"]
        .as_u64()
        .unwrap();
    assert!(stepped("t-rate"));
    let paused = admin(q, "GET", "/v1/admin/events/t-rate/stats", &json!({})).json();
    assert_eq!(
        (paused["admitted_total"].as_u64(), paused["state"].as_str()),
        (Some(before), Some("paused"))
    );
    // Those in line are told; the range has no upper end and the confidence is low.
    let last = status(q, "t-rate", &tickets[79]).json();
    assert_eq!(
        (last["status"].as_str(), last["paused"].as_bool()),
        (Some("waiting"), Some(true)),
        "{last}"
    );
    assert!(last["eta_confidence"].as_f64().unwrap() <= 0.2, "{last}");
    assert!(last["eta_range_seconds"][1].is_null(), "{last}");
    assert_eq!(
        admin(q, "POST", "/v1/admin/events/t-rate/resume", &json!({})).status,
        200
    );
    assert!(wait_until(Duration::from_secs(3), || {
        admin(q, "GET", "/v1/admin/events/t-rate/stats", &json!({})).json()["admitted_total"]
            .as_u64()
            .unwrap()
            > before
    }));
    let last = status(q, "t-rate", &tickets[79]).json();
    assert_eq!(
        (last["status"].as_str(), last["paused"].as_bool()),
        (Some("waiting"), None),
        "{last}"
    );
    // The head of the line got the pass, which the edge would accept.
    let s = status(q, "t-rate", &tickets[0]);
    let body = s.json();
    assert_eq!(body["status"], "admitted", "{body}");
    let pass = body["pass"].as_str().unwrap();
    let claims = keys()
        .verify(
            TokenKind::Pass,
            pass.as_bytes(),
            Validity::at(now(), 0),
            Some("t-rate"),
        )
        .unwrap();
    assert_eq!(claims.visitor, body["visitor"].as_str().unwrap());
    assert!(s
        .headers
        .iter()
        .any(|(n, v)| n == "set-cookie" && v.starts_with(&format!("wr_pass={pass};"))));
}

#[test]
fn an_unclaimed_grant_lapses_and_frees_its_slot() {
    let q = &queue();
    configure(
        q,
        "t-claim",
        json!({"max_active": 1, "claim_seconds": 5, "opens_at": now() + 3000}),
    );
    let (_, first) = join(q, "t-claim", None);
    let (_, second) = join(q, "t-claim", None);
    configure(q, "t-claim", json!({"max_active": 1, "claim_seconds": 5}));
    // Only one slot: the second visitor waits while the first holds the grant.
    assert!(stepped("t-claim"));
    assert_eq!(status(q, "t-claim", &second).json()["status"], "waiting");
    // The first never claims; after the claim window the slot goes to the second.
    assert!(wait_until(Duration::from_secs(8), || status(
        q, "t-claim", &second
    )
    .json()["status"]
        == "admitted"));
    assert_eq!(status(q, "t-claim", &first).json()["status"], "expired");
    let stats = admin(q, "GET", "/v1/admin/events/t-claim/stats", &json!({})).json();
    assert_eq!(stats["lapsed_total"], 1, "{stats}");
}

#[test]
fn visitors_who_stop_polling_leave_the_line_and_leave_works() {
    let q = &queue();
    configure(
        q,
        "t-gone",
        json!({"abandon_seconds": 5, "opens_at": now() + 3000}),
    );
    let (_, quiet) = join(q, "t-gone", None);
    let (_, polite) = join(q, "t-gone", None);
    let (_, active) = join(q, "t-gone", None);
    let r = q
        .request(
            "POST",
            "/v1/events/t-gone/leave",
            &[("x-wr-ticket", polite.as_bytes())],
            b"",
        )
        .unwrap();
    assert_eq!((r.status, r.json()["left"].as_bool()), (200, Some(true)));
    assert_eq!(status(q, "t-gone", &polite).json()["status"], "expired");
    assert_eq!(status(q, "t-gone", &active).json()["position"], 2);
    let ok = wait_until(Duration::from_secs(9), || {
        status(q, "t-gone", &active).json()["position"] == 1
    });
    assert!(ok, "the quiet visitor did not leave the line");
    assert_eq!(status(q, "t-gone", &quiet).json()["status"], "expired");
    let stats = admin(q, "GET", "/v1/admin/events/t-gone/stats", &json!({})).json();
    assert_eq!(stats["abandoned_total"], 1, "{stats}");
}

#[test]
fn the_admin_api_needs_the_bearer_token() {
    let q = &queue();
    let cfg = json!({"rate_per_second": 1, "burst": 1, "max_active": 1, "session_seconds": 60,
        "claim_seconds": 30, "abandon_seconds": 60, "opens_at": 1, "closes_at": 2});
    let no_auth = q
        .request(
            "PUT",
            "/v1/admin/events/t-admin",
            &[],
            cfg.to_string().as_bytes(),
        )
        .unwrap();
    let wrong = q
        .request(
            "PUT",
            "/v1/admin/events/t-admin",
            &[("authorization", b"Bearer nope-nope-nope-nope")],
            cfg.to_string().as_bytes(),
        )
        .unwrap();
    for r in [&no_auth, &wrong] {
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (401, Some("UNAUTHORIZED"))
        );
    }
    let disabled = &InProcessRouter::start(redis_cluster(), &[("WR_ADMIN_TOKEN", "")]);
    let r = admin(
        disabled,
        "GET",
        "/v1/admin/events/t-admin/stats",
        &json!({}),
    );
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (403, Some("ADMIN_DISABLED"))
    );
}

/// The scheme of `Authorization` is compared without case (RFC 9110).
#[test]
fn the_admin_bearer_scheme_is_case_insensitive() {
    let q = &queue();
    configure(q, "t-scheme", json!({}));
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("{scheme} {ADMIN_TOKEN}");
        let r = q
            .get(
                "/v1/admin/events/t-scheme/stats",
                &[("authorization", auth.as_bytes())],
            )
            .unwrap();
        assert_eq!(r.status, 200, "{scheme}");
    }
}

/// An edge that forwards with other wire settings (here another pass cookie name) is
/// refused by name instead of admitting visitors it will never let through.
#[test]
fn an_edge_with_other_wire_settings_is_refused_by_name() {
    let q = &queue();
    configure(q, "t-wire", json!({}));
    let ours = wr_pass::Wire::default().to_header();
    let theirs = wr_pass::Wire {
        pass_cookie: "shop_pass".into(),
        ..wr_pass::Wire::default()
    }
    .to_header();
    let join = |wire: &str| {
        q.request(
            "POST",
            "/v1/events/t-wire/join",
            &[("x-wr-wire", wire.as_bytes())],
            b"",
        )
        .unwrap()
    };
    assert_eq!(join(&ours).status, 200);
    let refused = join(&theirs);
    assert_eq!(
        (refused.status, refused.error_code().as_deref()),
        (500, Some("EDGE_MISMATCH"))
    );
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(r#"pass_cookie: edge "shop_pass", origin-queue "wr_pass""#),
        "{message}"
    );
}

/// A pass lives as long as the session, so no event may have sessions longer than the
/// longest pass the edge accepts.
#[test]
fn sessions_longer_than_the_longest_pass_are_refused() {
    let q = &InProcessRouter::start(redis_cluster(), &[("WR_MAX_PASS_LIFETIME_SECONDS", "3600")]);
    let t = now();
    let cfg = |session: u64| {
        json!({"rate_per_second": 1, "burst": 1, "max_active": 10, "session_seconds": session,
            "claim_seconds": 30, "abandon_seconds": 60, "opens_at": t - 1, "closes_at": t + 3600})
    };
    let r = admin(q, "PUT", "/v1/admin/events/t-long", &cfg(3601));
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (422, Some("BAD_CONFIG"))
    );
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("session_seconds: at most 3600"),
        "{message}"
    );
    let r = admin(q, "PUT", "/v1/admin/events/t-long", &cfg(3600));
    assert_eq!(r.status, 200, "{:?}", r.json());
}

/// The listen backlog a crowd arriving at once waits in: large by default (tokio's own
/// default is 128) and configurable; `ss` shows it as the listening socket's Send-Q.
#[test]
fn the_listen_backlog_is_large_and_configurable() {
    let backlog = |q: &InProcessQueue| -> u32 {
        let out = std::process::Command::new("ss")
            .args(["-ltnH", &format!("sport = :{}", q.addr.port())])
            .output()
            .expect("ss (iproute2)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no listening socket in {text:?}"))
    };
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        backlog(&InProcessQueue::start(redis_cluster(), &[])),
        4096.min(somaxconn)
    );
    let configured = InProcessQueue::start(redis_cluster(), &[("WR_LISTEN_BACKLOG", "1500")]);
    assert_eq!(backlog(&configured), 1500.min(somaxconn));
}

#[test]
fn bad_input_gets_clear_errors() {
    let q = &queue();
    let cases: Vec<(Response, u16, &str)> = vec![
        (
            q.request("POST", "/v1/events/Bad%20Id/join", &[], b"")
                .unwrap(),
            400,
            "BAD_EVENT_ID",
        ),
        (
            q.request("POST", "/v1/events/no-such-event/join", &[], b"")
                .unwrap(),
            404,
            "EVENT_NOT_FOUND",
        ),
        (
            q.get("/v1/events/t-bad/status", &[]).unwrap(),
            401,
            "TICKET_REQUIRED",
        ),
        (
            q.get("/v1/events/t-bad/status", &[("x-wr-ticket", b"forged")])
                .unwrap(),
            401,
            "TICKET_INVALID",
        ),
        (
            admin(q, "PUT", "/v1/admin/events/t-bad", &json!("not an object")),
            400,
            "BAD_JSON",
        ),
        (
            admin(
                q,
                "PUT",
                "/v1/admin/events/t-bad",
                &json!({"rate_per_second": 0, "burst": 0, "max_active": 1,
            "session_seconds": 60, "claim_seconds": 30, "abandon_seconds": 60, "opens_at": 5, "closes_at": 1}),
            ),
            422,
            "BAD_CONFIG",
        ),
        (q.get("/nope", &[]).unwrap(), 404, "NOT_FOUND"),
    ];
    for (r, code, name) in cases {
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (code, Some(name)),
            "{:?}",
            r.json()
        );
    }
    let huge = vec![b'x'; 64 * 1024];
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let r = q
        .request(
            "PUT",
            "/v1/admin/events/t-bad",
            &[("authorization", auth.as_bytes())],
            &huge,
        )
        .unwrap();
    assert_eq!(r.status, 413);
    // A ticket for another event is refused on this one.
    configure(q, "t-bad", json!({}));
    let (_, ticket) = join(q, "t-bad", None);
    let r = q
        .get(
            "/v1/events/t-join/status",
            &[("x-wr-ticket", ticket.as_bytes())],
        )
        .unwrap();
    assert_eq!(r.error_code().as_deref(), Some("TICKET_INVALID"));
}

#[test]
fn idempotency_keys_replay_the_first_answer() {
    let q = &queue();
    configure(q, "t-idem", json!({"opens_at": now() + 3000}));
    let key = b"0b6f4b38-5a1e-4c55-9d3e-7c1b2a9e8f10";
    let post = |key: &[u8], body: &[u8]| {
        q.request(
            "POST",
            "/v1/events/t-idem/join",
            &[("idempotency-key", key)],
            body,
        )
        .unwrap()
    };
    let first = post(key, b"");
    let replay = post(key, b"");
    assert_eq!((first.status, replay.status), (200, 200));
    assert_eq!(
        first.json(),
        replay.json(),
        "a replay returns the first answer"
    );
    assert_eq!(first.header("x-wr-ticket"), replay.header("x-wr-ticket"));
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    // Exactly one place was taken.
    let public = q.get("/v1/events/t-idem", &[]).unwrap().json();
    assert_eq!(public["waiting"], 1);
    let other = post(key, b"{\"different\":true}");
    assert_eq!(
        (other.status, other.error_code().as_deref()),
        (422, Some("IDEMPOTENCY_KEY_REUSED"))
    );
    let bad = post(b"not-a-uuid", b"");
    assert_eq!(
        (bad.status, bad.error_code().as_deref()),
        (400, Some("BAD_IDEMPOTENCY_KEY"))
    );
}

#[test]
fn per_client_and_per_visitor_limits() {
    let q = &InProcessRouter::start(
        redis_cluster(),
        &[
            ("WR_CLIENT_RATE_LIMIT", "2:5"),
            ("WR_VISITOR_RATE_LIMIT", "1:3"),
        ],
    );
    configure(q, "t-limit", json!({"opens_at": now() + 3000}));
    let statuses: Vec<u16> = (0..8)
        .map(|_| q.get("/v1/events/t-limit", &[]).unwrap().status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );
    let limited = q
        .get("/v1/events/t-limit", &[("x-forwarded-for", b"203.0.113.9")])
        .unwrap();
    assert_eq!(
        limited.status, 429,
        "X-Forwarded-For from an untrusted peer must not change the client"
    );
    assert!(limited.header("retry-after").is_some());
    assert_eq!(limited.error_code().as_deref(), Some("RATE_LIMITED"));

    // Behind a trusted proxy, X-Forwarded-For names the client.
    let q = &InProcessRouter::start(
        redis_cluster(),
        &[
            ("WR_TRUSTED_PROXIES", "127.0.0.1"),
            ("WR_VISITOR_RATE_LIMIT", "1:3"),
        ],
    );
    let (_, ticket) = join(q, "t-limit", None);
    let polls: Vec<u16> = (0..6)
        .map(|i| {
            let xff = format!("198.51.100.{i}");
            q.get(
                "/v1/events/t-limit/status",
                &[
                    ("x-wr-ticket", ticket.as_bytes()),
                    ("x-forwarded-for", xff.as_bytes()),
                ],
            )
            .unwrap()
            .status
        })
        .collect();
    assert_eq!(
        polls.iter().filter(|s| **s == 429).count(),
        3, // burst 3: three polls pass (a new visitor's join is not counted), whatever the address
        "per-visitor limit across addresses: {polls:?}"
    );
}

#[test]
fn every_key_the_service_writes_expires() {
    let q = &queue();
    let event = "t-ttl";
    // One active session at a time, so that the others stay in line.
    configure(
        q,
        event,
        json!({"rate_per_second": 2, "burst": 1, "max_active": 1}),
    );
    // Every kind of write: joins (one with an Idempotency-Key), polls, a grant claimed,
    // a leave, and admission steps.
    let mut tickets: Vec<String> = (0..4).map(|_| join(q, event, None).1).collect();
    let keyed = q
        .request(
            "POST",
            &format!("/v1/events/{event}/join"),
            &[("idempotency-key", b"5d0c8a6e-3b7f-4f0e-9a51-2c6d8e4b1f07")],
            b"",
        )
        .unwrap();
    assert_eq!(keyed.status, 200);
    tickets.push(keyed.header("x-wr-ticket").unwrap().to_owned());
    let leave = q
        .request(
            "POST",
            &format!("/v1/events/{event}/leave"),
            &[("x-wr-ticket", tickets[4].as_bytes())],
            b"",
        )
        .unwrap();
    assert_eq!(leave.status, 200);
    let claimed = wait_until(Duration::from_secs(5), || {
        status(q, event, &tickets[0]).json()["status"] == "admitted"
    });
    assert!(claimed, "the first visitor was never admitted");
    // Admission steps after all of it (they write too).
    assert!(stepped(event) && stepped(event));
    for ticket in &tickets[2..4] {
        assert_eq!(status(q, event, ticket).status, 200);
    }

    // Every key of the event, and the event list, on whichever master holds it.
    let tag = format!("{{wr:{event}}}");
    let mut checked = Vec::new();
    for node in redis_cluster() {
        let port = node.rsplit(':').next().unwrap();
        if !redis_nodes::redis_cli(port, &["ROLE"]).starts_with("master") {
            continue;
        }
        let found = redis_nodes::redis_cli(port, &["--scan", "--pattern", &format!("{tag}*")]);
        let mut names: Vec<String> = found.lines().map(str::to_owned).collect();
        if redis_nodes::redis_cli(port, &["EXISTS", "wr:events"]) == "1" {
            names.push("wr:events".into());
        }
        for name in names {
            let ttl: i64 = redis_nodes::redis_cli(port, &["PTTL", &name])
                .parse()
                .unwrap();
            // -1: no lifetime; -2: gone since the scan (an emptied set), which is fine.
            assert_ne!(ttl, -1, "{name} has no lifetime");
            checked.push(name);
        }
    }
    for kind in ["cfg", "seq", "q", "seen", "active", "stats", "idem:"] {
        assert!(
            checked
                .iter()
                .any(|k| k.starts_with(&format!("{tag}:{kind}"))),
            "no {kind} key was written: {checked:?}"
        );
    }
    assert!(checked.iter().any(|k| k == "wr:events"), "{checked:?}");
}

/// The count of `wr_eta_range_total{result}` in origin-queue's metrics.
fn eta_range_count(api: impl Target, result: &str) -> u64 {
    let text = String::from_utf8_lossy(&api.get("/metrics", &[]).unwrap().body).into_owned();
    let line = format!("wr_eta_range_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line} in /metrics:\n{text}"))
}

#[test]
fn a_range_shown_while_paused_is_not_counted_as_holding_the_wait() {
    let q = &queue();
    configure(q, "t-range", json!({}));
    assert_eq!(
        admin(q, "POST", "/v1/admin/events/t-range/pause", &json!({})).status,
        200
    );
    let (paused, paused_ticket) = join(q, "t-range", None);
    assert!(paused["eta_range_seconds"][1].is_null(), "{paused}");
    assert_eq!(
        admin(q, "POST", "/v1/admin/events/t-range/resume", &json!({})).status,
        200
    );
    let (running, running_ticket) = join(q, "t-range", None);
    assert!(running["eta_range_seconds"][1].is_number(), "{running}");
    for ticket in [&paused_ticket, &running_ticket] {
        assert!(wait_until(Duration::from_secs(5), || status(
            q, "t-range", ticket
        )
        .json()["status"]
            == "admitted"));
    }
    assert_eq!(eta_range_count(q, "unbounded"), 1);
    assert_eq!(
        eta_range_count(q, "inside") + eta_range_count(q, "outside"),
        1,
        "the join shown a bounded range is scored against it"
    );
}

fn end_session(api: impl Target, event: &str, body: &[u8]) -> Response {
    api.request(
        "POST",
        &format!("/v1/events/{event}/session-end"),
        &[("content-type", b"application/json")],
        body,
    )
    .unwrap()
}

/// A session-end report is authenticated by the pass it carries: forged, expired,
/// another event's, or not JSON, it is refused and frees nothing; the real one frees the
/// place once, and a repeat is a 409 that counts nothing; a pass of the visitor's earlier
/// session cannot end a later one.
#[test]
fn session_end_reports_are_authenticated_by_their_pass_and_count_once() {
    let q = &queue();
    let event = "t-ends";
    configure(q, event, json!({"max_active": 5, "rate_per_second": 50}));
    let (joined, ticket) = join(q, event, None);
    let visitor = joined["visitor"].as_str().unwrap().to_owned();
    assert!(wait_until(Duration::from_secs(5), || status(
        q, event, &ticket
    )
    .json()["status"]
        == "admitted"));
    let body = status(q, event, &ticket).json();
    let pass = body["pass"].as_str().unwrap().to_owned();
    let stats = || event_stats(q, event);
    assert_eq!(stats()["active"], 1);

    let ring = keys();
    let t = now();
    let mut forged = pass.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let refusals = [
        (json!({"pass": forged}).to_string(), 403, "PASS_INVALID"),
        (
            json!({"pass": wr_tests::fixtures::pass_with(&ring, event, &visitor, t - 900, t - 100)})
                .to_string(),
            403,
            "PASS_EXPIRED",
        ),
        (
            json!({"pass": wr_tests::fixtures::pass_with(&ring, "other", &visitor, t - 5, t + 300)})
                .to_string(),
            403,
            "PASS_WRONG_EVENT",
        ),
        (
            // A pass of an earlier session of the same visitor.
            json!({"pass": wr_tests::fixtures::pass_with(&ring, event, &visitor, t - 3000, t + 300)})
                .to_string(),
            409,
            "SESSION_NOT_ACTIVE",
        ),
        ("{\"pass\":".to_owned(), 400, "BAD_JSON"),
        (String::new(), 400, "BAD_JSON"),
        (format!("{{\"pass\":\"{}\"}}", "A".repeat(20_000)), 413, "BODY_TOO_LARGE"),
        (json!({"pass": "p1.".repeat(200)}).to_string(), 403, "PASS_INVALID"),
        (json!({"pass": pass, "more": 1}).to_string(), 400, "BAD_JSON"),
    ];
    for (body, code, name) in refusals {
        let r = end_session(q, event, body.as_bytes());
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (code, Some(name)),
            "{body}"
        );
    }
    assert_eq!(stats()["active"], 1, "a refused report freed the place");

    let body = json!({ "pass": pass }).to_string();
    let ended = end_session(q, event, body.as_bytes());
    assert_eq!(
        ended.status,
        200,
        "{}",
        String::from_utf8_lossy(&ended.body)
    );
    let again = end_session(q, event, body.as_bytes());
    assert_eq!(
        (again.status, again.error_code().as_deref()),
        (409, Some("SESSION_NOT_ACTIVE"))
    );
    let after = stats();
    assert_eq!(after["active"], 0, "{after}");
    assert_eq!(after["sessions_ended"]["backend"], 1, "{after}");
    assert_eq!(
        status(q, event, &ticket).json()["status"],
        "expired",
        "an ended session hands out no new pass"
    );
}

/// The admin stats of `event`.
fn event_stats(api: impl Target, event: &str) -> Value {
    admin(
        api,
        "GET",
        &format!("/v1/admin/events/{event}/stats"),
        &json!({}),
    )
    .json()
}

/// The names of `event`'s keys, on whichever master holds them.
fn event_keys(event: &str) -> Vec<String> {
    let pattern = format!("{{wr:{event}}}*");
    redis_cluster()
        .iter()
        .map(|node| node.rsplit(':').next().unwrap().to_owned())
        .filter(|port| redis_nodes::redis_cli(port, &["ROLE"]).starts_with("master"))
        .flat_map(|port| {
            redis_nodes::redis_cli(&port, &["--scan", "--pattern", &pattern])
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// An event that asks for proof of work answers a join without it with a challenge in
/// the documented form, and writes nothing: a flood of such joins leaves Redis as it
/// was and nobody in line.
#[test]
fn a_join_without_work_gets_a_challenge_and_costs_no_write() {
    let q = &queue();
    let event = "t-pow-ask";
    configure(q, event, json!({"proof_of_work": {"difficulty": 8}}));
    let asked = queue_client::join_response(q, event, None);
    assert_eq!(
        (asked.status, asked.error_code().as_deref()),
        (403, Some("POW_REQUIRED"))
    );
    let pow = &asked.json()["error"]["pow"];
    assert_eq!(pow["difficulty"], 8);
    assert_eq!(pow["algorithm"], "sha256-leading-zero-bits");
    assert_eq!(pow["header"], "x-wr-pow");
    assert!(pow["expires_at"].as_u64().unwrap() > now() + 500, "{pow}");
    assert!(pow["challenge"].as_str().unwrap().starts_with("c1."));
    assert!(
        asked.header("set-cookie").is_none(),
        "no ticket without a place"
    );
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50 {
                    let r = queue_client::join_response(q, event, None);
                    assert_eq!(r.error_code().as_deref(), Some("POW_REQUIRED"));
                }
            });
        }
    });
    // The configuration, the draw record and what the admission step keeps by itself
    // (its figures, the poll ring's epochs: a write per epoch, not per join) only: no
    // line, no arrival counter, no poll marks, no record of a challenge.
    let written: Vec<String> = event_keys(event)
        .into_iter()
        .filter(|k| {
            !k.ends_with(":cfg")
                && !k.ends_with(":draw")
                && !k.ends_with(":stats")
                && !k.ends_with(":seenx")
        })
        .collect();
    assert!(
        written.is_empty(),
        "a challenge wrote to Redis: {written:?}"
    );
    let stats = event_stats(q, event);
    assert_eq!(
        (stats["waiting"].as_u64(), stats["pow_difficulty"].as_u64()),
        (Some(0), Some(8))
    );
}

/// A solved challenge takes one place, for the visitor it was handed to; sent again it
/// finds that place, never a second one, and once the place is gone it is refused.
#[test]
fn a_solution_takes_one_place_once() {
    let q = &queue();
    let event = "t-pow-once";
    configure(
        q,
        event,
        json!({"proof_of_work": {"difficulty": 6}, "opens_at": now() + 3000}),
    );
    let asked = queue_client::join_response(q, event, None).json();
    let pow = &asked["error"]["pow"];
    let solution = wr_pass::pow::solve(pow["challenge"].as_str().unwrap(), 6);
    let first = queue_client::join_with_work(q, event, &solution);
    assert_eq!(first.status, 200, "{:?}", first.json());
    let again = queue_client::join_with_work(q, event, &solution);
    assert_eq!(again.status, 200);
    assert_eq!(
        (
            again.json()["visitor"].clone(),
            again.json()["position"].as_u64()
        ),
        (first.json()["visitor"].clone(), Some(1)),
        "a replay found another place"
    );
    let ticket = first.header("x-wr-ticket").unwrap();
    let left = q
        .request(
            "POST",
            &format!("/v1/events/{event}/leave"),
            &[("x-wr-ticket", ticket.as_bytes())],
            b"",
        )
        .unwrap();
    assert_eq!(left.status, 200);
    let replayed = queue_client::join_with_work(q, event, &solution);
    assert_eq!(
        (replayed.status, replayed.error_code().as_deref()),
        (409, Some("POW_REPLAYED"))
    );
    // A ticket holder joins again with no work (one visitor holds one place).
    let rejoined = queue_client::join_response(q, event, Some(ticket));
    assert_eq!(rejoined.status, 200, "{:?}", rejoined.json());
    let stats = event_stats(q, event);
    assert_eq!(stats["waiting"], 1, "{stats}");
}

/// Forged, malformed, stale, another event's and unsolved solutions are refused with
/// their own code and take nobody's place; raising the difficulty refuses solutions of
/// easier challenges at once; a difficulty out of range is refused.
#[test]
fn bad_solutions_and_difficulties_are_refused() {
    let q = &queue();
    let event = "t-pow-bad";
    configure(q, event, json!({"proof_of_work": {"difficulty": 4}}));
    configure(
        q,
        "t-pow-other",
        json!({"proof_of_work": {"difficulty": 4}}),
    );
    let challenge_of = |event: &str| {
        queue_client::join_response(q, event, None).json()["error"]["pow"]["challenge"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let good = challenge_of(event);
    let solved = wr_pass::pow::solve(&good, 4);
    let mut forged_challenge = good.clone();
    let last = forged_challenge.pop().unwrap();
    forged_challenge.push(if last == 'A' { 'B' } else { 'A' });
    // A nonce that does not solve it: the first one that falls short.
    let short = (0u64..)
        .map(|n| format!("{good}:{n}"))
        .find(|s| wr_pass::pow::Solution::parse(s).unwrap().work() < 4)
        .unwrap();
    let ring = keys();
    let t = now();
    let stale_claims = wr_pass::pow::Challenge {
        difficulty: 4,
        salt: [9; 16],
    }
    .claims(event, "v-stale", t - 700);
    let stale = ring.mint(TokenKind::Challenge, &stale_claims).unwrap();
    let pass_as_challenge = wr_tests::fixtures::pass(event, "v-pass");
    let refusals: Vec<(String, u16, &str)> = vec![
        ("no nonce".into(), 400, "POW_INVALID"),
        (format!("{good}:"), 400, "POW_INVALID"),
        (format!("{good}:12x"), 400, "POW_INVALID"),
        (
            format!("{forged_challenge}:{}", solved.rsplit(':').next().unwrap()),
            400,
            "POW_INVALID",
        ),
        (short, 400, "POW_INVALID"),
        (
            wr_pass::pow::solve(&challenge_of("t-pow-other"), 4),
            400,
            "POW_INVALID",
        ),
        (wr_pass::pow::solve(&stale, 4), 403, "POW_EXPIRED"),
        (
            wr_pass::pow::solve(&pass_as_challenge, 4),
            400,
            "POW_INVALID",
        ),
        (format!("{}:1", "c1.".repeat(3000)), 400, "POW_INVALID"),
    ];
    for (solution, code, name) in &refusals {
        let r = queue_client::join_with_work(q, event, solution);
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (*code, Some(*name)),
            "{}",
            &solution[..solution.len().min(80)]
        );
    }
    // Raised mid-sale: the easier solution now gets a challenge at the new difficulty.
    configure(q, event, json!({"proof_of_work": {"difficulty": 10}}));
    let raised = queue_client::join_with_work(q, event, &solved);
    assert_eq!(raised.error_code().as_deref(), Some("POW_REQUIRED"));
    assert_eq!(raised.json()["error"]["pow"]["difficulty"], 10);
    let stats = event_stats(q, event);
    assert_eq!(
        stats["waiting"], 0,
        "a refused solution took a place: {stats}"
    );
    for difficulty in [0, 29, 255] {
        let mut cfg = json!({"rate_per_second": 1, "burst": 1, "max_active": 1, "session_seconds": 60,
            "claim_seconds": 30, "abandon_seconds": 60, "opens_at": t, "closes_at": t + 60});
        cfg["proof_of_work"] = json!({ "difficulty": difficulty });
        let r = admin(q, "PUT", &format!("/v1/admin/events/{event}"), &cfg);
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (422, Some("BAD_CONFIG")),
            "{difficulty}"
        );
        assert!(r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("proof_of_work.difficulty"));
    }
}

/// The admission of a visitor, through status polls: the pass and the ticket.
fn admitted_pass(api: impl Target, event: &str, ticket: &str) -> String {
    assert!(
        wait_until(Duration::from_secs(5), || status(api, event, ticket).json()
            ["status"]
            == "admitted"),
        "never admitted"
    );
    status(api, event, ticket).json()["pass"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn revoke(api: impl Target, event: &str, body: Value) -> Response {
    admin(
        api,
        "POST",
        &format!("/v1/admin/events/{event}/revoke"),
        &body,
    )
}

/// A revocation ends every admission made before the cut: the revoked get no new pass,
/// their session-end reports are refused as revoked, the places free; with `requeue`
/// they may join again (at the back), and every pass issued after is issued no earlier
/// than the cut.
#[test]
fn a_revocation_ends_the_admissions_before_the_cut() {
    let q = &queue();
    let event = "t-revoke";
    configure(q, event, json!({"max_active": 5}));
    let (_, ticket) = join(q, event, None);
    let pass = admitted_pass(q, event, &ticket);
    let r = revoke(q, event, json!({"admitted": "requeue"}));
    assert_eq!(r.status, 200, "{:?}", r.json());
    let body = r.json();
    let cut = body["not_before"].as_u64().unwrap();
    assert!((now()..=now() + 1).contains(&cut), "{body}");
    assert_eq!(
        (
            body["sessions_revoked"].as_u64(),
            body["grants_revoked"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(
        body["edge"],
        json!({"events": [{"id": event, "not_before": cut}]})
    );
    assert_eq!(status(q, event, &ticket).json()["status"], "expired");
    let report = end_session(q, event, json!({ "pass": pass }).to_string().as_bytes());
    assert_eq!(
        (report.status, report.error_code().as_deref()),
        (403, Some("PASS_REVOKED"))
    );
    let stats = event_stats(q, event);
    assert_eq!(
        (
            stats["active"].as_u64(),
            stats["not_before"].as_u64(),
            stats["revoked_total"].as_u64()
        ),
        (Some(0), Some(cut), Some(1))
    );
    // Back in line, admitted again, with a pass no earlier than the cut.
    let (_, ticket) = join(q, event, Some(&ticket));
    let again = admitted_pass(q, event, &ticket);
    let claims = keys()
        .verify(
            TokenKind::Pass,
            again.as_bytes(),
            Validity::at(now(), 30).with_not_before(cut),
            Some(event),
        )
        .expect("the new pass survives the cut");
    assert!(claims.issued_at >= cut);
}

/// With `bar`, the revoked may not join again with their ticket; others still may.
#[test]
fn a_barred_visitor_cannot_join_again() {
    let q = &queue();
    let event = "t-revoke-bar";
    configure(q, event, json!({"max_active": 5}));
    let (_, ticket) = join(q, event, None);
    admitted_pass(q, event, &ticket);
    assert_eq!(revoke(q, event, json!({"admitted": "bar"})).status, 200);
    let refused = queue_client::join_response(q, event, Some(&ticket));
    assert_eq!(
        (refused.status, refused.error_code().as_deref()),
        (403, Some("ADMISSION_REVOKED"))
    );
    let (other, _) = join(q, event, None);
    assert_eq!(other["status"], "waiting", "{other}");
}

/// A cut in the future, one older than any pass, one behind the cut in force, an
/// unknown way, an unknown event: each refused with its reason, nothing changed.
#[test]
fn bad_revocations_are_refused() {
    let q = &queue();
    let event = "t-revoke-bad";
    configure(q, event, json!({}));
    let t = now();
    let cases = [
        (
            json!({"admitted": "requeue", "before": t + 60}),
            422,
            "BAD_REVOCATION",
            "future",
        ),
        (
            json!({"admitted": "requeue", "before": t - 2 * 86_400}),
            422,
            "BAD_REVOCATION",
            "revoke nothing",
        ),
        (
            json!({"admitted": "kick"}),
            400,
            "BAD_JSON",
            "unknown variant",
        ),
        (json!({"before": t}), 400, "BAD_JSON", "admitted"),
        (
            json!({"admitted": "bar", "extra": 1}),
            400,
            "BAD_JSON",
            "unknown field",
        ),
    ];
    for (body, code, name, says) in cases {
        let r = revoke(q, event, body.clone());
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (code, Some(name)),
            "{body}"
        );
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(says), "{body}: {message}");
    }
    let stats = event_stats(q, event);
    assert_eq!(stats["not_before"], 0, "a refused revocation set a cut");
    assert_eq!(revoke(q, event, json!({"admitted": "requeue"})).status, 200);
    let back = revoke(q, event, json!({"admitted": "requeue", "before": t - 100}));
    assert_eq!(
        (back.status, back.error_code().as_deref()),
        (422, Some("BAD_REVOCATION"))
    );
    assert_eq!(
        revoke(q, "t-revoke-none", json!({"admitted": "bar"})).status,
        404
    );
    let unauthenticated = q
        .request(
            "POST",
            &format!("/v1/admin/events/{event}/revoke"),
            &[],
            b"{\"admitted\":\"bar\"}",
        )
        .unwrap();
    assert_eq!(unauthenticated.status, 401);
}
