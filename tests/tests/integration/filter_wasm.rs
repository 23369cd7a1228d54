//! The built `edge_filter.wasm` under wasmtime, through the proxy-wasm ABI, with an
//! injected clock and peer address: every decision path, deterministically.

use serde_json::json;
use wr_pass::{Claims, KeyRing, TokenKind};
use wr_tests::fixtures::{
    filter_config, filter_wasm, keys, pass_with, FOREIGN_KEYS_JSON, KEYS_JSON,
};
use wr_tests::proxy_wasm_host::{Clock, FilterModule, FilterVm, Metrics, Outcome, SharedData};

const T: u64 = 1_900_000_000;
const PEER: &str = "192.0.2.10:40000";

/// Compiled once for all tests of this module (of this process).
fn module() -> &'static FilterModule {
    static MODULE: std::sync::OnceLock<FilterModule> = std::sync::OnceLock::new();
    MODULE.get_or_init(|| FilterModule::load(&filter_wasm()).unwrap())
}

struct Rig {
    module: &'static FilterModule,
    clock: Clock,
    shared: SharedData,
    metrics: Metrics,
}

impl Rig {
    fn new() -> Rig {
        Rig {
            module: module(),
            clock: Clock::at_secs(T),
            shared: SharedData::default(),
            metrics: Metrics::default(),
        }
    }

    /// A configured VM ("worker") sharing this rig's clock, shared data and stats.
    fn vm(&self, overrides: serde_json::Value) -> FilterVm {
        let vm = self.vm_raw(filter_config(overrides).as_bytes());
        assert!(vm.configured(), "configure failed: {:?}", vm.logs());
        vm
    }

    fn vm_raw(&self, config: &[u8]) -> FilterVm {
        self.module
            .start(config, &self.clock, &self.shared, &self.metrics)
            .unwrap()
    }
}

/// A counter's value once `vm` has handed its counts over (the filter does on ticks).
fn counted(rig: &Rig, vm: &mut FilterVm, name: &str) -> i64 {
    vm.tick().unwrap();
    rig.metrics.get(name)
}

fn cookie(pass: &str) -> String {
    format!("wr_pass={pass}")
}

fn valid_pass(event: &str, visitor: &str) -> String {
    pass_with(&keys(), event, visitor, T - 5, T + 300)
}

fn api_get(vm: &mut FilterVm, path: &str, cookie_value: Option<&str>) -> Outcome {
    let mut headers = vec![("accept", "application/json")];
    if let Some(c) = cookie_value {
        headers.push(("cookie", c));
    }
    vm.get(path, &headers, PEER).unwrap()
}

#[test]
fn counts_reach_the_host_on_the_tick_not_per_request() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({}));
    assert_eq!(vm.tick_period_ms(), Some(100));
    let c = cookie(&valid_pass("concert", "alice"));
    for _ in 0..3 {
        assert_eq!(api_get(&mut vm, "/reserve", Some(&c)).status(), 200);
    }
    assert_eq!(
        rig.metrics.get("wr_edge_admitted"),
        0,
        "no metric call per request"
    );
    vm.tick().unwrap();
    assert_eq!(rig.metrics.get("wr_edge_admitted"), 3);
    vm.tick().unwrap();
    assert_eq!(
        rig.metrics.get("wr_edge_admitted"),
        3,
        "each count handed over once"
    );
}

/// The hot path of a visitor in session: once its pass is verified and its rate-limit
/// lease drawn, a request reads the headers and the clock, looks once in shared data
/// for an end of its session (the backend may have ended it on another worker), and
/// sets the two identity headers (added: any header of their names was removed first),
/// and makes no other host call (no metric, no property).
#[test]
fn an_admitted_request_of_a_returning_visitor_makes_five_host_calls() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({"rate_limit_lease": 8}));
    let c = cookie(&valid_pass("concert", "alice"));
    // The first request draws one token, the second a lease of eight.
    for _ in 0..2 {
        assert_eq!(api_get(&mut vm, "/reserve", Some(&c)).status(), 200);
    }
    let before = vm.work();
    for _ in 0..7 {
        assert_eq!(api_get(&mut vm, "/reserve", Some(&c)).status(), 200);
    }
    let work = vm.work().since(&before);
    let calls_per_request = |name| work.calls_of(name) as f64 / 7.0;
    assert_eq!(calls_per_request("proxy_get_header_map_pairs"), 1.0);
    assert_eq!(calls_per_request("proxy_get_current_time_nanoseconds"), 1.0);
    assert_eq!(calls_per_request("proxy_add_header_map_value"), 2.0);
    assert_eq!(calls_per_request("proxy_get_shared_data"), 1.0);
    assert_eq!(work.host_calls(), 5 * 7, "{:?}", work.calls);
}

#[test]
fn valid_pass_is_forwarded_with_identity_headers_set_by_the_filter_only() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({}));
    let c = cookie(&valid_pass("concert", "alice"));
    let out = vm
        .get(
            "/reserve/seat?id=1",
            &[
                ("cookie", &c),
                ("x-wr-visitor", "mallory"),
                ("X-WR-Visitor", "eve"),
                ("x-wr-event", "other"),
            ],
            PEER,
        )
        .unwrap();
    let Outcome::Forwarded(headers) = &out else {
        panic!("{out:?}")
    };
    let visitors: Vec<_> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"x-wr-visitor"))
        .collect();
    assert_eq!(visitors.len(), 1, "{headers:?}");
    assert_eq!(
        out.forwarded_header("x-wr-visitor").as_deref(),
        Some("alice")
    );
    assert_eq!(
        out.forwarded_header("x-wr-event").as_deref(),
        Some("concert")
    );
    assert_eq!(counted(&rig, &mut vm, "wr_edge_admitted"), 1);
}

/// Many backends read `_` as `-` in header names (CGI, WSGI, nginx with
/// `underscores_in_headers`): a second spelling of an identity header must not ride
/// along with the filter's own, on any path.
#[test]
fn identity_headers_with_underscores_are_removed_on_every_path() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({}));
    let c = cookie(&valid_pass("concert", "alice"));
    for path in [
        "/reserve/seat",
        "/static/app.css",
        "/v1/events/concert/status",
    ] {
        let out = vm
            .get(
                path,
                &[
                    ("cookie", &c),
                    ("x_wr_visitor", "mallory"),
                    ("X_WR_Event", "evil"),
                    ("x-wr_visitor", "eve"),
                ],
                PEER,
            )
            .unwrap();
        let Outcome::Forwarded(headers) = &out else {
            panic!("{path}: {out:?}")
        };
        let spoofed: Vec<_> = headers
            .iter()
            .filter(|(_, v)| [&b"mallory"[..], b"evil", b"eve"].contains(&v.as_slice()))
            .collect();
        assert!(spoofed.is_empty(), "{path}: {headers:?}");
    }
}

/// Requests to origin-queue carry the edge's wire settings, set by the filter alone.
#[test]
fn queue_requests_carry_the_wire_settings_and_nothing_else_does() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({"pass_cookie": "shop_pass"}));
    let spoof = [("x-wr-wire", "pass_cookie=evil")];
    let out = vm.get("/v1/events/concert/join", &spoof, PEER).unwrap();
    let wire = out.forwarded_header("x-wr-wire").unwrap();
    assert!(wire.starts_with("pass_cookie=shop_pass;"), "{wire}");
    let out = vm.get("/static/app.css", &spoof, PEER).unwrap();
    assert_eq!(out.forwarded_header("x-wr-wire"), None);
}

/// A validly signed pass that lives longer than `max_pass_lifetime_seconds` (a day by
/// default) is refused with its own counter: a signing mistake or a leaked key must not
/// mint passes that never end.
#[test]
fn a_pass_that_lives_longer_than_the_bound_is_refused() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({}));
    let forever = pass_with(&keys(), "concert", "alice", T - 5, u64::MAX);
    let out = api_get(&mut vm, "/reserve", Some(&cookie(&forever)));
    let Outcome::Replied(reply) = &out else {
        panic!("{out:?}")
    };
    assert_eq!(
        (reply.status, reply.error_code().as_deref()),
        (403, Some("PASS_INVALID"))
    );
    assert_eq!(counted(&rig, &mut vm, "wr_edge_pass_lifetime_too_long"), 1);
    let day = pass_with(&keys(), "concert", "alice", T - 5, T - 5 + 86_400);
    let out = api_get(&mut vm, "/reserve", Some(&cookie(&day)));
    assert_eq!(
        out.forwarded_header("x-wr-visitor").as_deref(),
        Some("alice")
    );
}

#[test]
fn passes_signed_with_the_previous_key_still_admit() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({}));
    let k1_active = KEYS_JSON.replace(r#""active":"k2""#, r#""active":"k1""#);
    let old = pass_with(
        &KeyRing::from_json(&k1_active).unwrap(),
        "concert",
        "bob",
        T - 5,
        T + 300,
    );
    assert!(old.starts_with("p1.k1."));
    let out = api_get(&mut vm, "/reserve", Some(&cookie(&old)));
    assert_eq!(out.forwarded_header("x-wr-visitor").as_deref(), Some("bob"));
}

#[test]
fn a_removed_plugin_hands_its_last_counts_over() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({}));
    let c = cookie(&valid_pass("concert", "alice"));
    assert_eq!(api_get(&mut vm, "/reserve", Some(&c)).status(), 200);
    vm.delete_root().unwrap();
    assert_eq!(rig.metrics.get("wr_edge_admitted"), 1);
}

#[test]
fn request_headers_of_a_stream_never_created_get_a_503_not_a_trap() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({}));
    let outcome = vm
        .request_of_unknown_stream(&[(b":method", b"GET"), (b":path", b"/reserve")])
        .unwrap();
    assert_eq!(outcome.status(), 503);
    assert!(vm.logs().iter().any(|(_, l)| l.contains("unknown stream")));
}

#[test]
fn every_refusal_reason_has_its_code_and_counter_and_never_forwards() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({}));
    let good = valid_pass("concert", "alice");
    let forged = pass_with(
        &KeyRing::from_json(FOREIGN_KEYS_JSON).unwrap(),
        "concert",
        "alice",
        T - 5,
        T + 300,
    );
    let mut tampered = good.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let ticket = keys()
        .mint(
            TokenKind::Ticket,
            &Claims::new("concert", "alice", T - 5, T + 300),
        )
        .unwrap();
    let cases: Vec<(Option<String>, &str, &str)> = vec![
        (None, "NOT_ADMITTED", "wr_edge_pass_missing"),
        (Some(forged), "PASS_INVALID", "wr_edge_pass_bad_signature"),
        (Some(tampered), "PASS_INVALID", "wr_edge_pass_bad_signature"),
        (
            Some(good.replacen(".k2.", ".k7.", 1)),
            "PASS_INVALID",
            "wr_edge_pass_unknown_key",
        ),
        (
            Some("p1.k2.%%%.x".into()),
            "PASS_INVALID",
            "wr_edge_pass_malformed",
        ),
        (Some(ticket), "PASS_INVALID", "wr_edge_pass_unsupported"),
        (
            Some(pass_with(&keys(), "concert", "a", T - 700, T - 100)),
            "PASS_EXPIRED",
            "wr_edge_pass_expired",
        ),
        (
            Some(pass_with(&keys(), "concert", "a", T + 100, T + 700)),
            "PASS_NOT_YET_VALID",
            "wr_edge_pass_not_yet_valid",
        ),
        (
            Some(valid_pass("other", "alice")),
            "PASS_WRONG_EVENT",
            "wr_edge_pass_wrong_event",
        ),
    ];
    for (pass, code, counter) in cases {
        let before = counted(&rig, &mut vm, counter);
        let out = api_get(&mut vm, "/reserve", pass.as_deref().map(cookie).as_deref());
        let reply = out
            .reply()
            .unwrap_or_else(|| panic!("{pass:?} was forwarded"));
        assert_eq!(
            (reply.status, reply.error_code().as_deref()),
            (403, Some(code)),
            "{pass:?}"
        );
        assert_eq!(reply.header("retry-after"), Some("5"));
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(counted(&rig, &mut vm, counter), before + 1, "{counter}");
    }
    assert_eq!(counted(&rig, &mut vm, "wr_edge_denied"), 9);
    assert_eq!(counted(&rig, &mut vm, "wr_edge_admitted"), 0);
}

#[test]
fn expiry_follows_the_injected_clock_with_leeway() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({"clock_skew_seconds": 30}));
    let c = cookie(&pass_with(&keys(), "concert", "a", T - 10, T + 60));
    rig.clock.set_secs(T + 60 + 29);
    assert_eq!(api_get(&mut vm, "/reserve", Some(&c)).status(), 200);
    rig.clock.set_secs(T + 60 + 30);
    let out = api_get(&mut vm, "/reserve", Some(&c));
    assert_eq!(
        out.reply().unwrap().error_code().as_deref(),
        Some("PASS_EXPIRED")
    );
}

#[test]
fn browser_navigation_is_redirected_to_the_waiting_room() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({}));
    let out = vm
        .get(
            "/reserve/seat?id=7",
            &[("accept", "text/html,application/xhtml+xml")],
            PEER,
        )
        .unwrap();
    let reply = out.reply().unwrap();
    assert_eq!(reply.status, 302);
    assert_eq!(
        reply.header("location"),
        Some("/waiting-room/concert?return_to=/reserve/seat%3Fid%3D7")
    );
    assert_eq!(counted(&rig, &mut vm, "wr_edge_redirected"), 1);
}

#[test]
fn bypass_and_queue_paths_are_forwarded_without_identity() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({}));
    for path in [
        "/static/app.css",
        "/",
        "/v1/events/concert/status",
        "/waiting-room/concert",
    ] {
        let out = vm
            .get(
                path,
                &[("x-wr-visitor", "mallory"), ("x-wr-event", "concert")],
                PEER,
            )
            .unwrap();
        assert_eq!(out.status(), 200, "{path}");
        assert_eq!(out.forwarded_header("x-wr-visitor"), None, "{path}");
        assert_eq!(out.forwarded_header("x-wr-event"), None, "{path}");
    }
    assert_eq!(counted(&rig, &mut vm, "wr_edge_bypassed"), 2);
    assert_eq!(counted(&rig, &mut vm, "wr_edge_queue_forwarded"), 2);
}

#[test]
fn paths_not_in_normal_form_are_refused() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({}));
    for path in [
        "/static/../reserve",
        "//reserve",
        "/%2e%2e/reserve",
        "/static%2f..%2freserve",
        "reserve",
    ] {
        let out = vm.get(path, &[], PEER).unwrap();
        assert_eq!(out.status(), 400, "{path}");
    }
    let out = vm.request(&[(b":method", b"GET")], Some(PEER)).unwrap();
    assert_eq!(out.status(), 400, "no :path");
}

#[test]
fn client_rate_limit_is_shared_by_all_workers() {
    let rig = Rig::new();
    let limits = json!({"client_rate_limit": {"requests_per_second": 5, "burst": 10}});
    let mut workers = [rig.vm(limits.clone()), rig.vm(limits)];
    let mut allowed = 0;
    for i in 0..40 {
        let out = workers[i % 2].get("/reserve", &[], PEER).unwrap();
        if out.status() == 429 {
            let reply = out.reply().unwrap();
            assert_eq!(reply.header("retry-after"), Some("1"));
            assert_eq!(reply.error_code().as_deref(), Some("RATE_LIMITED"));
        } else {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10, "burst is shared, not per worker");
    rig.clock.advance_ms(1000);
    let allowed_after: usize = (0..20)
        .filter(|i| workers[i % 2].get("/reserve", &[], PEER).unwrap().status() != 429)
        .count();
    assert_eq!(allowed_after, 5, "5 per second refill");
    // Another client is not affected, and spoofed forwarding headers change nothing.
    assert_ne!(
        workers[0]
            .get("/reserve", &[], "198.51.100.7:1")
            .unwrap()
            .status(),
        429
    );
    let spoofed = [
        ("x-forwarded-for", "203.0.113.99"),
        ("x-real-ip", "203.0.113.99"),
        ("forwarded", "for=203.0.113.99"),
    ];
    assert_eq!(
        workers[1].get("/reserve", &spoofed, PEER).unwrap().status(),
        429
    );
}

#[test]
fn rate_limit_key_space_is_bounded() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({"rate_limit_slots": 64, "client_rate_limit": {"requests_per_second": 1, "burst": 1}}));
    for i in 0..3000u32 {
        let peer = format!("10.{}.{}.{}:1", i >> 16, (i >> 8) & 255, i & 255);
        vm.get("/reserve", &[], &peer).unwrap();
    }
    assert!(rig.shared.len() <= 64, "{} keys", rig.shared.len());
    // IPv6 clients are grouped by /64.
    let mut limited = 0;
    for i in 0..5 {
        let peer = format!("[2001:db8:aa:bb::{i}]:1");
        rig.clock.advance_ms(0);
        if vm.get("/reserve", &[], &peer).unwrap().status() == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 4, "a /64 shares one bucket ({limited} limited)");
}

#[test]
fn visitor_and_queue_limits() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({
        "client_rate_limit": null,
        "visitor_rate_limit": {"requests_per_second": 1, "burst": 2},
        "queue_rate_limit": {"requests_per_second": 1, "burst": 3}
    }));
    let c = cookie(&valid_pass("concert", "alice"));
    let statuses: Vec<u32> = (0..3)
        .map(|i| {
            let peer = format!("192.0.2.{i}:1");
            vm.get("/reserve", &[("cookie", &c)], &peer)
                .unwrap()
                .status()
        })
        .collect();
    assert_eq!(
        statuses,
        [200, 200, 429],
        "per visitor, whatever the address"
    );
    let queue: Vec<u32> = (0..5)
        .map(|i| {
            vm.get("/v1/events/x", &[], &format!("198.51.100.{i}:1"))
                .unwrap()
                .status()
        })
        .collect();
    assert_eq!(
        queue,
        [200, 200, 200, 429, 429],
        "global cap on origin-queue traffic"
    );
    assert_eq!(counted(&rig, &mut vm, "wr_edge_rate_limited_visitor"), 1);
    assert_eq!(counted(&rig, &mut vm, "wr_edge_rate_limited_queue"), 2);
}

#[test]
fn broken_configuration_is_refused_with_one_log_line_per_problem() {
    let rig = Rig::new();
    let broken = json!({
        "keys": {"active": "k9", "keys": {"k1": "c2hvcnQ="}},
        "events": [{"id": "Bad", "protected_prefixes": ["nope"]}],
        "client_rate_limit": {"requests_per_second": -1, "burst": 0}
    });
    let vm = rig.vm_raw(broken.to_string().as_bytes());
    assert!(!vm.configured());
    let errors: Vec<&String> = vm
        .logs()
        .iter()
        .filter(|(l, _)| *l == 4)
        .map(|(_, t)| t)
        .collect();
    assert!(errors.len() >= 7, "{errors:#?}");
    assert!(
        errors
            .iter()
            .all(|e| e.starts_with("wr-edge configuration")),
        "{errors:#?}"
    );
    assert!(
        !errors.iter().any(|e| e.contains("c2hvcnQ")),
        "a secret reached the log"
    );
    for text in [&b""[..], b"{", b"\xff\xfe\x00", b"[1,2]", b"{\"keys\":{}}"] {
        let vm = rig.vm_raw(text);
        assert!(!vm.configured(), "{text:?}");
        assert!(vm.logs().iter().any(|(l, _)| *l == 4));
    }
}

/// A tiny deterministic generator, so a failure is reproducible from its seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() as usize) % (max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn no_input_makes_the_filter_trap() {
    let rig = Rig::new();
    let mut vm = rig.vm(json!({}));
    let good = valid_pass("concert", "alice");
    let huge_cookie = format!("a={}; wr_pass={}", "x".repeat(1 << 20), "y".repeat(1 << 16));
    let many: Vec<String> = (0..1000)
        .map(|i| format!("wr_pass={}{i}", &good[..good.len() - 3]))
        .collect();
    let mut fixed: Vec<Vec<(Vec<u8>, Vec<u8>)>> = vec![
        vec![
            (b":path".to_vec(), b"/reserve".to_vec()),
            (b"cookie".to_vec(), huge_cookie.into_bytes()),
        ],
        vec![(b":path".to_vec(), b"/reserve\xff\xfe".to_vec())],
        vec![
            (b":path".to_vec(), b"/reserve".to_vec()),
            (b"\xff\xfename".to_vec(), b"\x00\x01".to_vec()),
        ],
        vec![
            (b":path".to_vec(), b"/reserve".to_vec()),
            (b"cookie".to_vec(), b"wr_pass=\xff\xfe\xfd".to_vec()),
        ],
        vec![
            (b":path".to_vec(), b"/reserve".to_vec()),
            (b"accept".to_vec(), b"\xfftext/html".to_vec()),
        ],
        vec![(b":path".to_vec(), vec![b'/'; 100_000])],
        vec![],
    ];
    fixed.push(
        std::iter::once((b":path".to_vec(), b"/reserve".to_vec()))
            .chain(
                many.iter()
                    .map(|c| (b"cookie".to_vec(), c.clone().into_bytes())),
            )
            .collect(),
    );
    for headers in &fixed {
        let refs: Vec<(&[u8], &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        for peer in [Some(PEER), None, Some("\u{fffd}garbage"), Some("[::1]:80")] {
            let out = vm.request(&refs, peer).expect("filter trapped");
            assert!(
                out.status() != 200 || refs.is_empty() || refs[0].1 != b"/reserve",
                "{out:?}"
            );
        }
    }
    let mut rng = XorShift(0x5eed_1234_abcd_0001);
    let names: [&[u8]; 5] = [b":path", b"cookie", b"accept", b"x-wr-visitor", b"host"];
    for _ in 0..3000 {
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for _ in 0..(rng.next() % 6) {
            let name = names[(rng.next() % 5) as usize].to_vec();
            let mut value = rng.bytes(64);
            if rng.next() % 3 == 0 {
                value = [b"wr_pass=".as_slice(), good.as_bytes(), &value].concat();
                let i = (rng.next() as usize) % value.len();
                value[i] ^= 1 << (rng.next() % 8);
            }
            headers.push((name, value));
        }
        let refs: Vec<(&[u8], &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        let out = vm.request(&refs, Some(PEER)).expect("filter trapped");
        if let Outcome::Forwarded(h) = &out {
            // Anything admitted must carry identity set by the filter from a real pass.
            if let Some(v) = h.iter().find(|(n, _)| n == b"x-wr-visitor") {
                assert_eq!(v.1, b"alice");
            }
        }
    }
    // The VM still works after all that.
    assert_eq!(
        api_get(&mut vm, "/reserve", Some(&cookie(&good))).status(),
        200
    );
}
