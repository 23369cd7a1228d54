//! Decisions on passes, identity headers and refusals.

use super::*;
use crate::config::tests::KEYS;
use crate::local_store::LocalStore;
use wr_pass::{Claims, KeyRing};

mod traffic;

const NOW: u64 = 1_800_000_000;

const LIMITS: &str = r#","client_rate_limit":{"requests_per_second":1,"burst":3},
                        "queue_rate_limit":{"requests_per_second":1,"burst":2}"#;

fn engine(limits: &str) -> Engine {
    let text = format!(
        r#"{{"keys":{KEYS},"events":[{{"id":"concert","protected_prefixes":["/reserve"]}}]{limits}}}"#
    );
    Engine::new(Config::from_json(text.as_bytes()).unwrap())
}

fn pass(event: &str, exp: u64) -> String {
    let ring = KeyRing::from_json(KEYS).unwrap();
    ring.mint(
        TokenKind::Pass,
        &Claims::new(event, "vis-1", exp - 600, exp),
    )
    .unwrap()
}

fn run<'e>(
    e: &'e Engine,
    path: &str,
    cookie: Option<&str>,
    accept: Option<&str>,
    peer: &str,
) -> Decision<'e> {
    let store = LocalStore::default();
    run_in(e, &store, path, cookie, accept, peer)
}

fn run_in<'e>(
    e: &'e Engine,
    s: &LocalStore,
    path: &str,
    cookie: Option<&str>,
    accept: Option<&str>,
    peer: &str,
) -> Decision<'e> {
    let mut headers = vec![(b":path".to_vec(), path.as_bytes().to_vec())];
    if let Some(c) = cookie {
        headers.push((b"cookie".to_vec(), c.as_bytes().to_vec()));
    }
    if let Some(a) = accept {
        headers.push((b"accept".to_vec(), a.as_bytes().to_vec()));
    }
    let request = e.read_request(&headers, Some(peer.as_bytes()));
    e.decide(&request, NOW * 1000, s)
}

fn status(d: &Decision) -> u32 {
    match &d.action {
        Action::Forward { .. } => 200,
        Action::Reply(r) => r.status,
    }
}

fn code(d: &Decision) -> String {
    match &d.action {
        Action::Reply(r) if r.status != 302 => {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            v["error"]["code"].as_str().unwrap().to_owned()
        }
        other => format!("{other:?}"),
    }
}

#[test]
fn valid_pass_forwards_with_identity() {
    let e = engine(LIMITS);
    let d = run(
        &e,
        "/reserve/seat",
        Some(&format!("wr_pass={}", pass("concert", NOW + 60))),
        None,
        "1.2.3.4:1",
    );
    assert_eq!(
        d.action,
        Action::Forward {
            remove: vec![],
            identity: Some(("vis-1".into(), "concert")),
            to_queue: false,
            session: Some(Box::new(Session {
                event: "concert".into(),
                pass: pass("concert", NOW + 60),
            })),
        }
    );
    assert_eq!(d.counters.to_vec(), vec![Counter::Admitted]);
}

/// `decide` at `now_ms` with only a pass cookie.
fn with_pass_at<'e>(e: &'e Engine, cookie: &str, now_ms: u64) -> Decision<'e> {
    let headers = vec![
        (b":path".to_vec(), b"/reserve".to_vec()),
        (b"cookie".to_vec(), cookie.as_bytes().to_vec()),
    ];
    let request = e.read_request(&headers, Some(b"1.2.3.4:1"));
    e.decide(&request, now_ms, &LocalStore::default())
}

#[test]
fn a_verified_pass_is_remembered_but_its_expiry_still_counts() {
    let e = engine("");
    let cookie = format!("wr_pass={}", pass("concert", NOW + 60));
    assert_eq!(status(&with_pass_at(&e, &cookie, NOW * 1000)), 200);
    assert_eq!(
        e.passes.lock().unwrap().len(),
        1,
        "verified once, remembered"
    );
    assert_eq!(status(&with_pass_at(&e, &cookie, NOW * 1000)), 200);
    // Past its expiry and the leeway, the remembered pass is refused as expired.
    let later = (NOW + 60 + 31) * 1000;
    assert_eq!(code(&with_pass_at(&e, &cookie, later)), "PASS_EXPIRED");
}

#[test]
fn a_pass_altered_after_a_genuine_one_was_remembered_is_refused() {
    let e = engine("");
    let genuine = pass("concert", NOW + 60);
    assert_eq!(
        status(&with_pass_at(&e, &format!("wr_pass={genuine}"), NOW * 1000)),
        200
    );
    // The same claims with the last MAC character changed: a miss, and a bad MAC.
    let mut forged = genuine.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let d = with_pass_at(&e, &format!("wr_pass={forged}"), NOW * 1000);
    assert_eq!(code(&d), "PASS_INVALID");
}

#[test]
fn identity_headers_are_removed_in_every_spelling_on_every_path() {
    let e = engine(LIMITS);
    let store = LocalStore::default();
    let cookie = format!("wr_pass={}", pass("concert", NOW + 60));
    for path in ["/reserve", "/v1/events/concert/status", "/static/a.css"] {
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = [
            (":path", path),
            ("cookie", &cookie),
            ("x_wr_visitor", "mallory"),
            ("X_WR_EVENT", "evil"),
            ("X-Wr-Visitor", "eve"),
            ("x-wr_wire", "pass_cookie=evil"),
            ("x-wr-visitors", "not ours"),
            ("x_wr_visitor_", "not ours"),
        ]
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
        headers.push((b"x-wr-event".to_vec(), b"\xff".to_vec()));
        let request = e.read_request(&headers, Some(b"1.2.3.4:1".as_slice()));
        let d = e.decide(&request, NOW * 1000, &store);
        let Action::Forward { remove, .. } = d.action else {
            panic!("{path}: {d:?}")
        };
        let removed: Vec<&[u8]> = remove.iter().map(Vec::as_slice).collect();
        assert_eq!(
            removed,
            [
                &b"x_wr_visitor"[..],
                b"x_wr_event",
                b"x-wr-visitor",
                b"x-wr_wire",
                b"x-wr-event"
            ],
            "{path}"
        );
    }
}

#[test]
fn only_queue_requests_carry_the_wire_settings() {
    let e = engine(LIMITS);
    for (path, want) in [("/v1/events/concert/join", true), ("/static/a", false)] {
        let d = run(&e, path, None, None, "1.2.3.4:1");
        let Action::Forward { to_queue, .. } = d.action else {
            panic!("{path}: {d:?}")
        };
        assert_eq!(to_queue, want, "{path}");
    }
    assert!(e.config().wire_header.starts_with("pass_cookie=wr_pass;"));
}

#[test]
fn a_pass_valid_for_longer_than_the_bound_is_refused() {
    let e = engine(r#","max_pass_lifetime_seconds":3600"#);
    let ring = KeyRing::from_json(KEYS).unwrap();
    let mint = |iat: u64, exp: u64| {
        let claims = Claims::new("concert", "vis-1", iat, exp);
        format!("wr_pass={}", ring.mint(TokenKind::Pass, &claims).unwrap())
    };
    let forever = mint(NOW - 1, u64::MAX);
    let d = run(&e, "/reserve", Some(&forever), None, "1.2.3.4:1");
    assert_eq!((status(&d), code(&d)), (403, "PASS_INVALID".to_owned()));
    assert_eq!(
        d.counters.to_vec(),
        vec![Counter::PassLifetimeTooLong, Counter::Denied]
    );
    let hour = mint(NOW - 1, NOW + 3599);
    assert_eq!(
        status(&run(&e, "/reserve", Some(&hour), None, "1.2.3.4:1")),
        200
    );
}

#[test]
fn each_refusal_has_its_code_and_counter() {
    let e = engine(LIMITS);
    let good = pass("concert", NOW + 60);
    let tampered = {
        let mut t = good.clone();
        t.pop();
        t.push(if good.ends_with('A') { 'B' } else { 'A' });
        t
    };
    let cases = [
        (None, "NOT_ADMITTED", Counter::NoPass),
        (
            Some(format!("wr_pass={}", pass("concert", NOW - 100))),
            "PASS_EXPIRED",
            Counter::PassExpired,
        ),
        (
            Some(format!("wr_pass={}", pass("other", NOW + 60))),
            "PASS_WRONG_EVENT",
            Counter::PassWrongEvent,
        ),
        (
            Some(format!("wr_pass={tampered}")),
            "PASS_INVALID",
            Counter::PassBadSignature,
        ),
        (
            Some("wr_pass=garbage".into()),
            "PASS_INVALID",
            Counter::PassMalformed,
        ),
        (
            Some(format!("wr_pass={}", good.replacen(".k1.", ".k9.", 1))),
            "PASS_INVALID",
            Counter::PassUnknownKey,
        ),
    ];
    for (cookie, want_code, counter) in cases {
        let d = run(
            &e,
            "/reserve",
            cookie.as_deref(),
            Some("application/json"),
            "1.2.3.4:1",
        );
        assert_eq!(
            (status(&d), code(&d)),
            (403, want_code.to_owned()),
            "{cookie:?}"
        );
        assert_eq!(d.counters.to_vec(), vec![counter, Counter::Denied]);
    }
}

#[test]
fn browsers_are_redirected_to_the_waiting_room() {
    let e = engine(LIMITS);
    let d = run(
        &e,
        "/reserve?seat=1",
        None,
        Some("text/html,application/xhtml+xml"),
        "1.2.3.4:1",
    );
    let Action::Reply(r) = &d.action else {
        panic!()
    };
    assert_eq!(r.status, 302);
    assert_eq!(
        r.headers[0],
        (
            "location",
            "/waiting-room/concert?return_to=/reserve%3Fseat%3D1".into()
        )
    );
}

#[test]
fn any_valid_candidate_admits() {
    let e = engine(LIMITS);
    let cookie = format!("wr_pass=junk; wr_pass={}", pass("concert", NOW + 60));
    assert_eq!(
        status(&run(&e, "/reserve", Some(&cookie), None, "1.2.3.4:1")),
        200
    );
}

#[test]
fn odd_requests_are_refused_cleanly() {
    let e = engine(LIMITS);
    let store = LocalStore::default();
    let d = e.decide(&Request::default(), NOW * 1000, &store);
    assert_eq!(status(&d), 400);
    assert_eq!(status(&run(&e, "//reserve", None, None, "1.1.1.1:1")), 400);
}

#[test]
fn a_host_no_server_can_route_is_refused_with_its_code_on_every_path() {
    let e = engine(LIMITS);
    let store = LocalStore::default();
    for path in ["/v1/events/concert/join", "/reserve", "/static/app.js"] {
        let headers: [(&[u8], &[u8]); 2] = [(b":path", path.as_bytes()), (b":authority", b"")];
        let d = e.decide(&e.read_request(&headers, None), NOW * 1000, &store);
        assert_eq!(
            (status(&d), code(&d)),
            (400, "HOST_INVALID".into()),
            "{path}"
        );
        assert_eq!(d.counters.as_slice(), [Counter::HostRejected]);
    }
}

#[test]
fn the_header_limit_is_the_configured_one() {
    let store = LocalStore::default();
    let cookie = format!("pad={}", "x".repeat(40 * 1024));
    let headers: [(&[u8], &[u8]); 2] = [
        (b":path", b"/static/app.js"),
        (b"cookie", cookie.as_bytes()),
    ];
    let default = engine(LIMITS);
    let d = default.decide(&default.read_request(&headers, None), NOW * 1000, &store);
    assert_eq!((status(&d), code(&d)), (431, "HEADERS_TOO_LARGE".into()));
    let raised = engine(r#","max_request_header_bytes":49152"#);
    let d = raised.decide(&raised.read_request(&headers, None), NOW * 1000, &store);
    assert_eq!(status(&d), 200);
}
