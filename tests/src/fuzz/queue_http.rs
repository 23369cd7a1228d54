//! The `queue-http` target: raw HTTP/1.1 requests to a running origin-queue.

use std::time::Duration;

use serde_json::json;
use wr_pass::{Claims, TokenKind};

use super::{Target, Verdict};
use crate::fixtures::{keys, now};

/// Starts origin-queue on the test Redis Cluster with rate limits out of the way (so
/// inputs reach the parsers instead of a 429), creates the event `fz`, and returns the
/// running service (stopped on drop) with its `queue-http` target.
pub fn queue_http_fixture() -> (crate::processes::OriginQueue, Target) {
    use crate::processes::{redis_cluster, OriginQueue, ADMIN_TOKEN};
    let limits = "1000000:1000000";
    let queue = OriginQueue::start(
        redis_cluster(),
        &[
            ("WR_CLIENT_RATE_LIMIT", limits),
            ("WR_VISITOR_RATE_LIMIT", limits),
        ],
    );
    let t = now();
    queue.put_event(
        "fz",
        &json!({"rate_per_second": 5, "burst": 5, "max_active": 10, "session_seconds": 60,
            "claim_seconds": 30, "abandon_seconds": 60, "opens_at": t - 1, "closes_at": t + 3600}),
    );
    let target = queue_http_target(queue.addr, ADMIN_TOKEN);
    (queue, target)
}

/// Raw HTTP/1.1 requests to a running origin-queue at `addr` (which must hold the
/// event `fz`, and whose admin token is `admin_token`): join, status, leave and the
/// admin API, with bodies, tickets, cookies and idempotency keys mutated. A crash is
/// a 5xx other than 503 (Redis trouble) or no answer at all to a complete request;
/// a false accept is a 2xx from the admin API without the exact admin token (under
/// the `Bearer` scheme, in any case of letters). A 500 is allowed only as the answer to
/// a request that claims to come from an edge with other wire settings (`x-wr-wire`).
pub fn queue_http_target(addr: std::net::SocketAddr, admin_token: &str) -> Target {
    let bearer = format!("authorization: Bearer {admin_token}\r\n").into_bytes();
    let expected = admin_token.to_owned();
    let t = now();
    let ticket = keys()
        .mint(
            TokenKind::Ticket,
            &Claims::new("fz", "fuzz-visitor", t - 1, t + 3600),
        )
        .expect("ticket");
    let config = json!({"rate_per_second": 5, "burst": 5, "max_active": 10, "session_seconds": 60,
        "claim_seconds": 30, "abandon_seconds": 60, "opens_at": t - 1, "closes_at": t + 3600});
    let request = |head: &str, extra: &[u8], body: &[u8]| {
        let mut raw = format!("{head} HTTP/1.1\r\nhost: fz\r\nconnection: close\r\n").into_bytes();
        raw.extend_from_slice(extra);
        raw.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        raw.extend_from_slice(body);
        raw
    };
    let ticket_header = format!("x-wr-ticket: {ticket}\r\n");
    let ticket_cookie = format!("cookie: a=b; wr_ticket={ticket}\r\n");
    let pad = "x".repeat(15_000);
    let big_cookies = format!("{ticket_cookie}cookie: a={pad}\r\ncookie: b={pad}\r\n").into_bytes();
    let seeds = vec![
        request(
            "POST /v1/events/fz/join",
            b"idempotency-key: 0f8fad5b-d9cb-469f-a165-70867728950e\r\n",
            b"",
        ),
        request("POST /v1/events/fz/join", ticket_header.as_bytes(), b"{}"),
        request("GET /v1/events/fz/status", ticket_header.as_bytes(), b""),
        request("GET /v1/events/fz/status", ticket_cookie.as_bytes(), b""),
        // What once closed origin-queue's shared HTTP/2 connection from Envoy: two
        // cookies of 15 KB, more than hyper's default header list.
        request("GET /v1/events/fz/status", &big_cookies, b""),
        request("POST /v1/events/fz/leave", ticket_header.as_bytes(), b""),
        request("GET /v1/events/fz", b"", b""),
        request(
            "PUT /v1/admin/events/fz",
            &bearer,
            config.to_string().as_bytes(),
        ),
        request("GET /v1/admin/events/fz/stats", &bearer, b""),
        request(
            "POST /v1/admin/events/fz/pause",
            b"authorization: Bearer wrong\r\n",
            b"",
        ),
    ];
    Target {
        name: "queue-http",
        seeds,
        check: Box::new(move |input| {
            let Some(status) = exchange(addr, input) else {
                // No answer: only a crash if the request was complete and well framed.
                return if is_plain_request(input) {
                    panic!("no answer to a complete request")
                } else {
                    Verdict::Rejected
                };
            };
            let wire_claim = input
                .windows(9)
                .any(|w| w.eq_ignore_ascii_case(b"x-wr-wire"));
            if status >= 500 && status != 503 && !(status == 500 && wire_claim) {
                panic!("server error {status}");
            }
            let admin = input.starts_with(b"PUT /v1/admin")
                || input.starts_with(b"GET /v1/admin")
                || input.starts_with(b"POST /v1/admin");
            let authorized = first_authorization(input)
                .is_some_and(|value| is_admin_credential(value, &expected));
            match (admin && (200..300).contains(&status), authorized) {
                (true, false) => Verdict::FalseAccept,
                (true, true) => Verdict::Accepted,
                _ if (200..300).contains(&status) => Verdict::Accepted,
                _ => Verdict::Rejected,
            }
        }),
    }
}

/// True if an `authorization` value is `Bearer <token>`: the scheme in any case, then
/// one or more spaces and exactly the token.
fn is_admin_credential(value: &[u8], token: &str) -> bool {
    let Some(space) = value.iter().position(|b| *b == b' ') else {
        return false;
    };
    let mut rest = &value[space..];
    while let [b' ', tail @ ..] = rest {
        rest = tail;
    }
    value[..space].eq_ignore_ascii_case(b"bearer") && rest == token.as_bytes()
}

/// The value (without surrounding blanks) of the first `authorization` header in the
/// head of `input`, header names compared without case as HTTP does.
fn first_authorization(input: &[u8]) -> Option<&[u8]> {
    // The head ends at the first empty line; servers also accept a bare `\n` ending.
    let end = (0..input.len())
        .find(|&i| input[i..].starts_with(b"\n\r\n") || input[i..].starts_with(b"\n\n"))?;
    input[..end]
        .split(|b| *b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|b| *b == b':')?;
            Some((&line[..colon], &line[colon + 1..]))
        })
        .find(|(name, _)| name.eq_ignore_ascii_case(b"authorization"))
        .map(|(_, value)| value.trim_ascii())
}

/// Sends `input` and returns the answer's status code. A request that is not plainly
/// complete is followed by a half-close, so the server sees the end of it at once
/// (for a complete one that would let the server drop the answer: hyper's default).
fn exchange(addr: std::net::SocketAddr, input: &[u8]) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(input).ok()?;
    if !is_plain_request(input) {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut head = [0u8; 12];
    let mut got = 0;
    while got < head.len() {
        match stream.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let text = std::str::from_utf8(head.get(9..12)?).ok()?;
    // hyper answers an HTTP/1.0 request in HTTP/1.0.
    (head.starts_with(b"HTTP/1.1 ") || head.starts_with(b"HTTP/1.0 ")).then(|| text.parse().ok())?
}

/// True for a seed-shaped request: one request line, headers, and a body exactly as
/// long as its content-length (the server owes such a request an answer).
fn is_plain_request(input: &[u8]) -> bool {
    let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let Ok(head) = std::str::from_utf8(&input[..end]) else {
        return false;
    };
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().parse::<usize>().ok())
        .collect::<Vec<_>>();
    head.is_ascii()
        && !head.contains('\0')
        && matches!(length.as_slice(), [Some(n)] if *n == input.len() - end - 4)
}
