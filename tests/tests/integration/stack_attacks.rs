//! The attack suite, through Envoy against the whole stack as `make up` runs it: forged,
//! tampered, expired, foreign-event and unknown-key passes, tickets passed off as passes,
//! spoofed identity and forwarded-address headers, huge and duplicated headers, admin
//! calls without the right token, leaving someone else's place, one client taking many
//! tickets, and a valid pass replayed from other addresses. Each must fail safely with
//! the right status, and nothing but the one legitimate request (and the replayed pass,
//! within one visitor's allowance) may reach the backend.

use std::net::SocketAddr;
use std::time::Instant;

use serde_json::json;
use wr_pass::{Claims, KeyRing, TokenKind};
use wr_tests::backend_log::requests_under;
use wr_tests::fixtures::{now, output_with_stdin, FOREIGN_KEYS_JSON};
use wr_tests::http::{self, Response};
use wr_tests::processes::Stack;

fn get(addr: SocketAddr, path: &str, headers: &[(&str, &[u8])]) -> Response {
    http::get(addr, path, headers).expect("request through the edge")
}

fn post(addr: SocketAddr, path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Response {
    http::request(addr, "POST", path, headers, body).expect("request through the edge")
}

fn post_from(
    from: [u8; 4],
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Response {
    let from = std::net::IpAddr::from(from);
    http::request_from(from, addr, "POST", path, headers, body).expect("request through the edge")
}

fn cookie(pass: &str) -> Vec<u8> {
    format!("wr_pass={pass}").into_bytes()
}

/// Flips one character inside the claims segment, keeping it base64url.
fn tamper(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Vec<u8> = parts[2].bytes().collect();
    let i = claims.len() / 2;
    claims[i] = if claims[i] == b'A' { b'B' } else { b'A' };
    let claims = String::from_utf8(claims).unwrap();
    [parts[0], parts[1], &claims, parts[3]].join(".")
}

/// What a burst of requests got from a limit of 50/s, burst 100.
struct Burst {
    served: u32,
    limited: u32,
    elapsed: f64,
}

impl Burst {
    /// Sends `count` requests with `send` (given the request's number); each must get 200,
    /// or 429 with `Retry-After`.
    fn run(what: &str, count: usize, mut send: impl FnMut(usize) -> Response) -> Burst {
        let started = Instant::now();
        let (mut served, mut limited) = (0, 0);
        for i in 0..count {
            let r = send(i);
            match r.status {
                200 => served += 1,
                429 => {
                    assert!(r.header("retry-after").is_some(), "429 without Retry-After");
                    limited += 1;
                }
                other => panic!("{what}: unexpected {other}"),
            }
        }
        Burst {
            served,
            limited,
            elapsed: started.elapsed().as_secs_f64(),
        }
    }

    /// What the limit lets through in the time the burst took (with 10 of slack).
    fn allowed(&self) -> f64 {
        100.0 + 50.0 * self.elapsed + 10.0
    }
}

/// The stack shared by the tests of this module (stopped when the process exits).
/// Every test sends from client addresses of its own (127.0.0.x, x named per test), so
/// that the edge's per-client limit of one never refuses another's, and marks its
/// backend paths with its own tag.
fn stack() -> &'static Stack {
    static STACK: std::sync::OnceLock<Stack> = std::sync::OnceLock::new();
    STACK.get_or_init(Stack::up)
}

fn get_from(from: [u8; 4], addr: SocketAddr, path: &str, headers: &[(&str, &[u8])]) -> Response {
    http::get_from(std::net::IpAddr::from(from), addr, path, headers)
        .expect("request through the edge")
}

/// The admin API, `/metrics` and `/readyz` are origin-queue's own business: through
/// the public edge they answer 404 whatever the token and however the path is spelled,
/// and nothing changes.
#[test]
fn admin_routes_are_not_reachable_through_the_public_edge() {
    let stack = stack();
    let from = [127, 0, 0, 20];
    let token = stack.admin_token.trim().to_owned();
    let bearer = format!("Bearer {token}");
    for path in [
        "/v1/admin/events/demo/stats",
        "/v1/admin/events/demo",
        "/V1/Admin/events/demo/stats",
        "/v1//admin/events/demo/stats",
        "/v1/events/../admin/events/demo/stats",
        "/v1/%61dmin/events/demo/stats",
        "/metrics",
        "/METRICS",
        "/readyz",
    ] {
        let r = get_from(
            from,
            stack.edge,
            path,
            &[("authorization", bearer.as_bytes())],
        );
        assert_eq!(r.status, 404, "{path} through the edge");
    }
    for path in [
        "/v1/admin/events/demo/pause",
        "/v1/admin/events/demo/resume",
    ] {
        let r = http::request_from(
            std::net::IpAddr::from(from),
            stack.edge,
            "POST",
            path,
            &[("authorization", bearer.as_bytes())],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 404, "POST {path} through the edge");
    }
    // The real token still works on origin-queue's own port, and nothing was paused.
    let direct = get(
        stack.queue,
        "/v1/admin/events/demo/stats",
        &[("authorization", bearer.as_bytes())],
    );
    assert_eq!(direct.status, 200);
    assert_eq!(direct.json()["paused"], false, "{:?}", direct.json());
    assert_eq!(get(stack.queue, "/metrics", &[]).status, 200);
}

/// On origin-queue's own port the admin API needs the exact token; the scheme is
/// compared without case (RFC 9110), and refused calls change nothing.
#[test]
fn admin_api_on_its_own_port_needs_the_exact_token() {
    let stack = stack();
    let stats = |auth: &[u8]| {
        get(
            stack.queue,
            "/v1/admin/events/demo/stats",
            &[("authorization", auth)],
        )
    };
    let token = stack.admin_token.trim().to_owned();
    for auth in [
        b"".to_vec(),
        b"Bearer wrong".to_vec(),
        format!("Bearer {token}x").into_bytes(),
        format!("Bearer {}", &token[..token.len() - 1]).into_bytes(),
        format!("Basic {token}").into_bytes(),
        token.clone().into_bytes(),
    ] {
        let r = stats(&auth);
        assert_eq!(
            r.status,
            401,
            "admin with {:?}",
            String::from_utf8_lossy(&auth)
        );
    }
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = stats(format!("{scheme} {token}").as_bytes());
        assert_eq!(r.status, 200, "{scheme}");
    }
    let before = stats(format!("Bearer {token}").as_bytes());
    let hijack = http::request(
        stack.queue,
        "PUT",
        "/v1/admin/events/demo",
        &[("authorization", b"Bearer wrong")],
        json!({"rate_per_second": 100000, "burst": 100000, "max_active": 1000000,
            "session_seconds": 60, "claim_seconds": 30, "abandon_seconds": 60,
            "opens_at": 0, "closes_at": now() + 60})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(hijack.status, 401);
    let paused = post(stack.queue, "/v1/admin/events/demo/pause", &[], b"");
    assert_eq!(paused.status, 401);
    let after = stats(format!("Bearer {token}").as_bytes());
    assert_eq!(
        after.json()["config"],
        before.json()["config"],
        "a refused admin call changed nothing"
    );
}

/// The shipped Envoy drops header names with `_` before the filter sees them
/// (`headers_with_underscores_action: DROP_HEADER`), so a second spelling of an identity
/// header never reaches the backend, and a request carrying one is still served.
#[test]
fn identity_headers_with_underscores_never_reach_the_backend() {
    let stack = stack();
    let pass = cookie(&stack.pass("demo", "carol"));
    let r = get_from(
        [127, 0, 0, 21],
        stack.edge,
        "/api/underscore",
        &[
            ("cookie", &pass),
            ("x_wr_visitor", b"mallory"),
            ("x_wr_event", b"evil"),
            ("X_WR_VISITOR", b"eve"),
        ],
    );
    assert_eq!(r.status, 200);
    let seen = requests_under(stack.backend, "/api/underscore");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0]["visitor"].as_str(), seen[0]["event"].as_str()),
        (Some("carol"), Some("demo"))
    );
    let names: Vec<&str> = seen[0]["header_names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(names.iter().all(|n| !n.contains('_')), "{names:?}");
}

const JSON_ACCEPT: (&str, &[u8]) = ("accept", b"application/json");

fn mint(ring: &KeyRing, kind: TokenKind, event: &str, visitor: &str, iat: u64, exp: u64) -> String {
    ring.mint(kind, &Claims::new(event, visitor, iat, exp))
        .unwrap()
}

/// A valid pass of alice for `demo`.
fn good_pass(stack: &Stack) -> String {
    let t = now();
    mint(
        &stack.key_ring(),
        TokenKind::Pass,
        "demo",
        "alice",
        t - 1,
        t + 600,
    )
}

#[test]
fn a_valid_pass_gets_through_with_the_filter_s_identity_not_the_client_s() {
    let stack = stack();
    let legit = get_from(
        [127, 0, 0, 30],
        stack.edge,
        "/reserve?tag=legit",
        &[
            ("cookie", &cookie(&good_pass(stack))),
            JSON_ACCEPT,
            ("x-wr-visitor", b"mallory"),
            ("x-wr-event", b"other"),
            ("x-forwarded-for", b"203.0.113.9"),
        ],
    );
    assert_eq!(legit.status, 200, "a valid pass is admitted");
    let seen = requests_under(stack.backend, "/reserve?tag=legit");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["visitor"], "alice", "spoofed x-wr-visitor replaced");
    assert_eq!(seen[0]["event"], "demo", "spoofed x-wr-event replaced");
}

#[test]
fn bad_passes_are_refused_and_never_reach_the_backend() {
    let stack = stack();
    let ring = stack.key_ring();
    let t = now();
    let good = good_pass(stack);
    let foreign = KeyRing::from_json(FOREIGN_KEYS_JSON).unwrap();
    let unknown_kid = KeyRing::from_json(
        r#"{"active":"k9","keys":{"k9":"dW5rbm93bi1rZXktdW5rbm93bi1rZXktdW5rbm93bi1r"}}"#,
    )
    .unwrap();
    let pass = |ring: &KeyRing, event: &str, iat: u64, exp: u64| {
        cookie(&mint(ring, TokenKind::Pass, event, "alice", iat, exp))
    };
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("no pass", b"theme=dark".to_vec()),
        (
            "forged (another key ring, same key id)",
            pass(&foreign, "demo", t - 1, t + 600),
        ),
        ("unknown key id", pass(&unknown_kid, "demo", t - 1, t + 600)),
        ("tampered claims", cookie(&tamper(&good))),
        ("expired", pass(&ring, "demo", t - 7200, t - 3600)),
        ("not yet valid", pass(&ring, "demo", t + 3600, t + 7200)),
        ("another event", pass(&ring, "other", t - 1, t + 600)),
        (
            "a queue ticket passed off as a pass",
            cookie(&mint(
                &ring,
                TokenKind::Ticket,
                "demo",
                "alice",
                t - 1,
                t + 600,
            )),
        ),
        (
            "signature cut off",
            cookie(good.rsplit_once('.').unwrap().0),
        ),
        ("non-UTF-8 garbage", b"wr_pass=\xff\xfe\x80garbage".to_vec()),
    ];
    let from = [127, 0, 0, 31];
    for (what, value) in &bad {
        let api = get_from(
            from,
            stack.edge,
            "/reserve?tag=bad-pass",
            &[("cookie", value), JSON_ACCEPT],
        );
        assert_eq!(api.status, 403, "{what}: API call refused");
        assert!(api.header("retry-after").is_some(), "{what}: Retry-After");
        let page = get_from(
            from,
            stack.edge,
            "/reserve?tag=bad-pass",
            &[("cookie", value), ("accept", b"text/html")],
        );
        assert_eq!(page.status, 302, "{what}: navigation sent to the room");
    }
    let seen = requests_under(stack.backend, "/reserve?tag=bad-pass");
    assert!(seen.is_empty(), "a bad pass got through: {seen:?}");
}

#[test]
fn malformed_headers_are_refused_without_a_5xx() {
    let stack = stack();
    let from = [127, 0, 0, 32];
    let path = "/reserve?tag=malformed";
    let r = get_from(from, stack.edge, path, &[("cookie", b"wr_pass=a\x00b")]);
    assert_eq!(r.status, 400, "NUL in a header");
    let huge = [b"wr_pass=".as_slice(), &vec![b'A'; 100 * 1024]].concat();
    let r = get_from(from, stack.edge, path, &[("cookie", &huge)]);
    assert!((400..500).contains(&r.status), "huge cookie: {}", r.status);
    let forged = cookie(&tamper(&good_pass(stack)));
    let many: Vec<(&str, &[u8])> = (0..200).map(|_| ("cookie", forged.as_slice())).collect();
    let r = get_from(from, stack.edge, path, &many);
    assert!(
        (400..500).contains(&r.status),
        "200 cookie headers: {}",
        r.status
    );
    assert!(requests_under(stack.backend, path).is_empty());
}

#[test]
fn nobody_can_give_up_someone_else_s_place() {
    let stack = stack();
    let t = now();
    let from = [127, 0, 0, 33];
    let join = || post_from(from, stack.edge, "/v1/events/demo/join", &[], b"");
    let victim = join();
    assert_eq!(victim.status, 200);
    let victim_id = victim.json()["visitor"].as_str().unwrap().to_owned();
    let victim_ticket = victim.header("x-wr-ticket").unwrap().to_owned();
    let attacker_ticket = join().header("x-wr-ticket").unwrap().to_owned();
    let foreign = KeyRing::from_json(FOREIGN_KEYS_JSON).unwrap();
    let forged_ticket = mint(
        &foreign,
        TokenKind::Ticket,
        "demo",
        &victim_id,
        t - 1,
        t + 600,
    );
    let leave = |ticket: &[u8], body: &[u8]| {
        let headers = [("x-wr-ticket", ticket)];
        post_from(from, stack.edge, "/v1/events/demo/leave", &headers, body)
    };
    assert_eq!(
        leave(forged_ticket.as_bytes(), b"").status,
        401,
        "forged ticket"
    );
    let tampered = tamper(&victim_ticket);
    assert_eq!(
        leave(tampered.as_bytes(), b"").status,
        401,
        "tampered ticket"
    );
    let naming_the_victim = json!({"visitor": victim_id}).to_string();
    let own = leave(attacker_ticket.as_bytes(), naming_the_victim.as_bytes());
    assert_ne!(
        own.json()["visitor"].as_str(),
        Some(victim_id.as_str()),
        "a body naming the victim is ignored: only the ticket's visitor leaves"
    );
    let standing = get_from(
        from,
        stack.edge,
        "/v1/events/demo/status",
        &[("x-wr-ticket", victim_ticket.as_bytes())],
    );
    assert_eq!(standing.status, 200);
    assert_ne!(
        standing.json()["status"],
        "expired",
        "the victim kept the place"
    );
}

/// The edge's per-client limit (50/s, burst 100 in envoy.yaml) cuts off one client
/// asking for many tickets with 429 + Retry-After, and no more get through than that.
#[test]
fn one_client_cannot_take_many_tickets() {
    let stack = stack();
    let joins = Burst::run("join flood", 400, |_| {
        post_from(
            [127, 0, 0, 34],
            stack.edge,
            "/v1/events/demo/join",
            &[],
            b"",
        )
    });
    let (issued, elapsed, allowed) = (joins.served, joins.elapsed, joins.allowed());
    assert!(
        joins.limited > 0,
        "400 joins from one client were never limited"
    );
    assert!(
        f64::from(issued) <= allowed,
        "{issued} tickets in {elapsed:.1} s; the limit allows about {allowed:.0}"
    );
}

/// A pass is a bearer token (like any session cookie), so copies are honoured while it
/// is valid; but bob's pass copied to four client addresses, each sending well under
/// the per-client burst, gets one visitor's allowance (50/s, burst 100) in all: the
/// rest 429 + Retry-After, and the backend sees bob only.
#[test]
fn a_replayed_pass_gets_one_visitor_s_allowance() {
    let stack = stack();
    let bob = cookie(&stack.pass("demo", "bob"));
    let replay = Burst::run("replayed pass", 240, |i| {
        let from = [127, 0, 0, 2 + (i % 4) as u8];
        let path = format!("/api/replay?request={i}");
        get_from(from, stack.edge, &path, &[("cookie", &bob), JSON_ACCEPT])
    });
    let (served, limited, elapsed) = (replay.served, replay.limited, replay.elapsed);
    let allowed = replay.allowed();
    println!(
        "replayed pass from 4 addresses: {served} served, {limited} refused in {elapsed:.2} s"
    );
    assert!(
        limited > 0,
        "240 requests under one replayed pass were never limited"
    );
    assert!(
        f64::from(served) <= allowed,
        "{served} requests under one pass in {elapsed:.1} s; one visitor's allowance is about {allowed:.0}"
    );
    let replayed = requests_under(stack.backend, "/api/replay");
    assert_eq!(replayed.len(), served as usize);
    assert!(replayed.iter().all(|r| r["visitor"] == "bob"));
}

/// What the edge's hop to origin-queue accepts and refuses is decided per request: a
/// client sending headers larger than origin-queue's HTTP/2 defaults (two 15 KB
/// cookies, forwarded) and larger than the edge accepts (two 30 KB cookies, 431 at the
/// edge) at the per-visitor limit, while 20 honest visitors poll their status 2,000
/// times, fails none of the honest polls and never makes Envoy lose a connection with
/// requests on it. Its own oversized requests get 431 `HEADERS_TOO_LARGE`, no
/// `Retry-After`.
#[test]
fn one_client_s_oversized_headers_never_fail_anyone_else_s_queue_calls() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    const HONEST_POLLS: usize = 2_000;
    let stack = stack();
    let join = |from: [u8; 4]| {
        let r = post_from(from, stack.edge, "/v1/events/demo/join", &[], b"");
        assert_eq!(r.status, 200, "join: {:?}", r.error_code());
        r.header("x-wr-ticket").expect("ticket").to_owned()
    };
    let honest: Vec<([u8; 4], String)> = (1..=20)
        .map(|i| ([127, 0, 1, i], join([127, 0, 1, i])))
        .collect();
    let attacker = [127, 0, 0, 35];
    let attacker_ticket = join(attacker);
    let dropped_before =
        stack.envoy_stat("cluster.origin_queue.upstream_cx_destroy_remote_with_active_rq");

    let (done, polls) = (AtomicBool::new(false), AtomicUsize::new(0));
    let (failures, attacker_answers) = std::thread::scope(|s| {
        let attack = s.spawn(|| {
            let mut answers: Vec<(usize, u16, Option<String>, bool)> = Vec::new();
            let mut sent = 0usize;
            let started = Instant::now();
            while !done.load(Ordering::SeqCst) {
                let pad = if sent % 2 == 0 { 15_000 } else { 30_000 };
                let a = format!("a={}", "x".repeat(pad)).into_bytes();
                let b = format!("b={}", "y".repeat(pad)).into_bytes();
                let headers: [(&str, &[u8]); 3] = [
                    ("x-wr-ticket", attacker_ticket.as_bytes()),
                    ("cookie", &a),
                    ("cookie", &b),
                ];
                let r = get_from(attacker, stack.edge, "/v1/events/demo/status", &headers);
                let retry = r.header("retry-after").is_some();
                answers.push((pad, r.status, r.error_code(), retry));
                sent += 1;
                // At the per-visitor limit (50/s): pace the sender, don't flood.
                let due = started + std::time::Duration::from_millis(20 * sent as u64);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            answers
        });
        let pollers: Vec<_> = honest
            .chunks(5)
            .map(|visitors| {
                let (polls, done) = (&polls, &done);
                s.spawn(move || {
                    let mut failed = Vec::new();
                    for (from, ticket) in visitors.iter().cycle() {
                        if polls.fetch_add(1, Ordering::SeqCst) >= HONEST_POLLS {
                            break;
                        }
                        let headers: [(&str, &[u8]); 1] = [("x-wr-ticket", ticket.as_bytes())];
                        let r = get_from(*from, stack.edge, "/v1/events/demo/status", &headers);
                        if r.status != 200 {
                            failed.push((r.status, r.error_code()));
                        }
                    }
                    done.store(true, Ordering::SeqCst);
                    failed
                })
            })
            .collect();
        let failures: Vec<_> = pollers
            .into_iter()
            .flat_map(|p| p.join().expect("poller"))
            .collect();
        (failures, attack.join().expect("attacker"))
    });

    eprintln!(
        "{HONEST_POLLS} honest polls, {} failed; the attacker sent {} requests: {:?}",
        failures.len(),
        attacker_answers.len(),
        attacker_answers
            .iter()
            .fold(std::collections::BTreeMap::new(), |mut m, a| {
                *m.entry((a.0, a.1)).or_insert(0) += 1;
                m
            })
    );
    assert!(failures.is_empty(), "honest polls failed: {failures:?}");
    let dropped_after =
        stack.envoy_stat("cluster.origin_queue.upstream_cx_destroy_remote_with_active_rq");
    assert_eq!(
        dropped_after, dropped_before,
        "origin-queue closed a connection with requests on it"
    );
    let under_limit = attacker_answers.iter().filter(|a| a.0 == 15_000).count();
    let over_limit = attacker_answers.iter().filter(|a| a.0 == 30_000).count();
    assert!(
        under_limit > 10 && over_limit > 10,
        "the attacker sent {under_limit} + {over_limit}"
    );
    let answered = attacker_answers
        .iter()
        .filter(|a| a.0 == 15_000 && a.1 == 200)
        .count();
    assert!(
        answered * 2 > under_limit,
        "{answered} of {under_limit} requests under the edge's limit answered 200"
    );
    for (pad, status, code, retry) in &attacker_answers {
        match pad {
            15_000 => assert!(
                *status == 200 || *status == 429,
                "a 30 KB header list under the edge's limit got {status} {code:?}"
            ),
            _ => assert_eq!(
                (*status, code.as_deref(), *retry),
                (431, Some("HEADERS_TOO_LARGE"), false),
                "a 60 KB header list"
            ),
        }
    }
}

/// A request hidden in another's body is never a request: bodies framed by chunked
/// encoding (Envoy forwards a body without a length as chunked), by `Content-Length`,
/// an HTTP/2 upload without a length, and a request pipelined behind another, each
/// carrying a request for a protected page from `mallory`, reach the backend as one request each on a bypass path, and the
/// backend's log (the tests' proof of what got through) never shows the hidden one.
#[test]
fn requests_hidden_in_bodies_are_never_recorded_as_requests() {
    let stack = stack();
    let hidden = b"GET /reserve/smuggled HTTP/1.1\r\nhost: shop\r\nx-wr-visitor: mallory\r\nx-wr-event: demo\r\ncontent-length: 0\r\n\r\n";
    let head = |framing: &str| {
        format!("POST /favicon.ico?tag=smuggle HTTP/1.1\r\nhost: shop\r\nconnection: close\r\n{framing}\r\n")
            .into_bytes()
    };
    let mut chunked = head("transfer-encoding: chunked\r\n");
    chunked.extend_from_slice(format!("{:x}\r\n", hidden.len()).as_bytes());
    chunked.extend_from_slice(hidden);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let mut sized = head(&format!("content-length: {}\r\n", hidden.len()));
    sized.extend_from_slice(hidden);
    let mut chunked_twice = head("transfer-encoding: chunked\r\n");
    for part in hidden.chunks(17) {
        chunked_twice.extend_from_slice(format!("{:x};ext=1\r\n", part.len()).as_bytes());
        chunked_twice.extend_from_slice(part);
        chunked_twice.extend_from_slice(b"\r\n");
    }
    chunked_twice.extend_from_slice(b"0\r\n\r\n");
    // Pipelined: the hidden request follows the carrier on the same connection, as a
    // request of its own; the edge judges it (no pass) and it never reaches the backend.
    let mut pipelined =
        b"POST /favicon.ico?tag=smuggle HTTP/1.1\r\nhost: shop\r\ncontent-length: 0\r\n\r\n"
            .to_vec();
    pipelined.extend_from_slice(hidden);
    for raw in [chunked, sized, chunked_twice, pipelined] {
        let from = std::net::IpAddr::from([127, 0, 0, 36]);
        let r = http::send_raw_from(Some(from), stack.edge, &raw).expect("request");
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    }
    // HTTP/2 with prior knowledge, the body streamed from stdin: no length on the wire.
    let out = output_with_stdin(
        std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--http2-prior-knowledge",
            ])
            .args([
                "--interface",
                "127.0.0.36",
                "-X",
                "POST",
                "--data-binary",
                "@-",
            ])
            .arg(format!("http://{}/favicon.ico?tag=smuggle", stack.edge)),
        hidden,
        "curl",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "HTTP/2 upload");

    let carriers = requests_under(stack.backend, "/favicon.ico?tag=smuggle");
    assert_eq!(carriers.len(), 5, "one request per carrier: {carriers:?}");
    let all = requests_under(stack.backend, "/");
    let smuggled: Vec<_> = all
        .iter()
        .filter(|r| {
            r["path"].as_str().unwrap_or("").contains("smuggled")
                || r["visitor"].as_str() == Some("mallory")
        })
        .collect();
    assert!(
        smuggled.is_empty(),
        "a hidden request was recorded: {smuggled:?}"
    );
}

/// Client-caused oddities of the request line and the host get a 4xx, never a 5xx, on
/// origin-queue's routes, protected pages and bypass paths alike: no `Host`, an empty,
/// repeated, listed, oversized (for the edge, and for Envoy itself) or malformed one,
/// absolute-form targets, HTTP/1.0,
/// `OPTIONS *`. Each carries an error code: the filter's own, or the one Envoy's reply
/// mappers give what Envoy refuses before the filter runs. Nothing reaches the backend.
#[test]
fn request_line_and_host_oddities_get_a_4xx_never_a_5xx() {
    let stack = stack();
    let tag = "tag=oddity";
    let targets = [
        format!("/v1/events/demo/status?{tag}"),
        format!("/waiting-room/demo?{tag}"),
        format!("/reserve?{tag}"),
        format!("/favicon.ico?{tag}"),
        format!("/healthz?{tag}"),
    ];
    let long_host = "h".repeat(40_000);
    for target in &targets {
        let cases: Vec<(&str, String, Option<&str>)> = vec![
            (
                "no Host",
                format!("GET {target} HTTP/1.1\r\n"),
                Some("BAD_REQUEST"),
            ),
            (
                "empty Host",
                format!("GET {target} HTTP/1.1\r\nhost:\r\n"),
                Some("HOST_INVALID"),
            ),
            (
                "blank Host",
                format!("GET {target} HTTP/1.1\r\nhost:  \r\n"),
                Some("HOST_INVALID"),
            ),
            (
                "two Hosts",
                format!("GET {target} HTTP/1.1\r\nhost: a\r\nhost: b\r\n"),
                Some("HOST_INVALID"),
            ),
            (
                "a list of hosts",
                format!("GET {target} HTTP/1.1\r\nhost: a,b\r\n"),
                Some("HOST_INVALID"),
            ),
            (
                "a Host over Envoy's own 60 KiB",
                format!(
                    "GET {target} HTTP/1.1\r\nhost: {}\r\n",
                    "h".repeat(62 * 1024)
                ),
                Some("HEADERS_TOO_LARGE"),
            ),
            (
                "oversized Host",
                format!("GET {target} HTTP/1.1\r\nhost: {long_host}\r\n"),
                Some("HEADERS_TOO_LARGE"),
            ),
            (
                "malformed Host",
                format!("GET {target} HTTP/1.1\r\nhost: a b\r\n"),
                Some("BAD_REQUEST"),
            ),
            (
                "absolute form, empty authority",
                format!("GET http://{target} HTTP/1.1\r\nhost: a\r\n"),
                Some("BAD_REQUEST"),
            ),
            (
                "HTTP/1.0",
                format!("GET {target} HTTP/1.0\r\n"),
                Some("HTTP_VERSION_UNSUPPORTED"),
            ),
        ];
        for (what, head, code) in cases {
            let raw = format!("{head}connection: close\r\n\r\n");
            let from = Some(std::net::IpAddr::from([127, 0, 0, 37]));
            let r = http::send_raw_from(from, stack.edge, raw.as_bytes()).expect(what);
            assert!(
                (400..500).contains(&r.status),
                "{what} on {target}: {}",
                r.status
            );
            assert_eq!(r.error_code().as_deref(), code, "{what} on {target}");
        }
        // Absolute form with an authority: routed by its path, as Envoy does.
        let raw = format!(
            "GET http://shop.example{target} HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
        );
        let r = http::send_raw_from(None, stack.edge, raw.as_bytes()).expect("absolute form");
        assert!(r.status < 500, "absolute form on {target}: {}", r.status);
    }
    let raw = b"OPTIONS * HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n";
    let r = http::send_raw(stack.edge, raw).expect("OPTIONS *");
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (404, Some("NOT_FOUND"))
    );
    let seen = requests_under(stack.backend, "/reserve?tag=oddity");
    assert!(seen.is_empty(), "{seen:?}");
    // Of the bypass path's requests, only the well-formed absolute-form one got through.
    let seen = requests_under(stack.backend, "/favicon.ico?tag=oddity");
    assert_eq!(seen.len(), 1, "{seen:?}");
}

/// origin-queue itself takes what the edge forwards, over HTTP/2 as Envoy speaks to it:
/// on its own port, with prior knowledge, a request with 64 KB of cookies (more than
/// Envoy or the edge let through, four times hyper's default header list, under
/// origin-queue's 128 KiB) is answered as usual. (curl's HTTP/2 library sends at most
/// 64 KiB of encoded headers, so the test goes no higher.)
#[test]
fn origin_queue_answers_a_large_header_list_over_http2() {
    let stack = stack();
    let cookie = format!("cookie: a={}", "x".repeat(32_000));
    let cookie_b = format!("cookie: b={}", "y".repeat(32_000));
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .args(["--http2-prior-knowledge", "--max-time", "10"])
        .args(["-H", &cookie, "-H", &cookie_b])
        .arg(format!("http://{}/v1/events/demo", stack.queue))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200");
}
