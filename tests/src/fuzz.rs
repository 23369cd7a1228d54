//! A small mutation fuzzer for the parsers that face attackers, usable on stable Rust.
//!
//! `cargo fuzz` needs a nightly toolchain, which this project's machines cannot fetch, so
//! this is the equivalent that runs here: each [`Target`] starts from a corpus of valid
//! inputs (`tests/fuzz/corpus/<target>/*`, plus seeds built in code), mutates them
//! (bit flips, byte edits with delimiter and non-UTF-8 bytes, inserts, deletions,
//! duplications, splices, truncation) and feeds every input to the code under test in
//! [`std::panic::catch_unwind`]. It counts executions, **crashes** (panics) and **false
//! accepts** (an input accepted that was not one of the validly signed seeds), and
//! writes each crashing input to `target/fuzz-crashes/<target>/` so it can be added to
//! the corpus once fixed. Runs are bounded in time and reproducible from their seed.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use edge_filter::header_map::{parse_header_map, serialize_header_map};
use serde_json::json;
use wr_edge_core::config::Config;
use wr_edge_core::decision::{Action, Engine};
use wr_edge_core::rate_limit::{SharedStore, StoreError};
use wr_edge_core::request::{same_header_name, Request};
use wr_pass::{parse_unverified, Claims, Extension, KeyRing, TokenKind, Validity};

use crate::fixtures::{filter_config, keys, now, pass_with, workspace_root};

/// What one fuzz run did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// The target's name.
    pub target: &'static str,
    /// The RNG seed (set `WR_FUZZ_SEED` to replay).
    pub seed: u64,
    /// Inputs executed.
    pub executions: u64,
    /// Inputs that panicked.
    pub crashes: u64,
    /// Inputs accepted although they were not validly signed.
    pub false_accepts: u64,
    /// Inputs the code under test accepted (valid ones included).
    pub accepted: u64,
}

/// Outcome of one input.
enum Verdict {
    Rejected,
    Accepted,
    FalseAccept,
}

/// Runs one input through the code under test and judges the outcome.
type Check = Box<dyn Fn(&[u8]) -> Verdict>;

/// A fuzz target: seeds and a check of one input.
pub struct Target {
    /// Name, also the corpus folder.
    pub name: &'static str,
    seeds: Vec<Vec<u8>>,
    check: Check,
}

/// The targets that need no server, by name: `pass`, `ticket`, `filter-config`,
/// `filter-request`. (`queue-http` needs a running origin-queue: [`queue_http_target`].)
pub fn targets() -> Vec<Target> {
    vec![
        token_target("pass", TokenKind::Pass),
        token_target("ticket", TokenKind::Ticket),
        filter_config_target(),
        filter_request_target(),
    ]
}

/// Runs `target` for `budget` with RNG `seed`.
pub fn run(target: &Target, budget: Duration, seed: u64) -> Report {
    let mut corpus = target.seeds.clone();
    corpus.extend(read_corpus(target.name));
    let mut rng = Rng(seed | 1);
    let mut report = Report {
        target: target.name,
        seed,
        ..Report::default()
    };
    // Keep panics quiet: they are counted and saved, not printed per input.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let end = Instant::now() + budget;
    // The seeds themselves first, unmutated.
    let mut pending: Vec<Vec<u8>> = corpus.clone();
    while Instant::now() < end {
        for _ in 0..64 {
            let input = pending.pop().unwrap_or_else(|| mutate(&mut rng, &corpus));
            report.executions += 1;
            match catch_unwind(AssertUnwindSafe(|| (target.check)(&input))) {
                Ok(Verdict::Rejected) => {}
                Ok(Verdict::Accepted) => report.accepted += 1,
                Ok(Verdict::FalseAccept) => {
                    report.false_accepts += 1;
                    save(target.name, "false-accept", &input, "accepted");
                }
                Err(payload) => {
                    report.crashes += 1;
                    let why = payload
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| payload.downcast_ref::<&str>().copied())
                        .unwrap_or("panic");
                    save(target.name, "crash", &input, why);
                }
            }
        }
    }
    std::panic::set_hook(hook);
    report
}

/// A seed from `WR_FUZZ_SEED`, else from the clock.
pub fn seed_from_env() -> u64 {
    std::env::var("WR_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

fn corpus_dir(name: &str) -> PathBuf {
    workspace_root().join("tests/fuzz/corpus").join(name)
}

fn read_corpus(name: &str) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(corpus_dir(name)) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect()
}

/// Saves a failing input, and beside it (`.why`) what went wrong.
fn save(target: &str, kind: &str, input: &[u8], why: &str) {
    let dir = crate::fixtures::target_dir()
        .join("fuzz-crashes")
        .join(target);
    let _ = std::fs::create_dir_all(&dir);
    let name = format!("{kind}-{:016x}", fnv(input));
    let _ = std::fs::write(dir.join(&name), input);
    let _ = std::fs::write(dir.join(format!("{name}.why")), why);
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// xorshift64*: small, fast, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the parsers: delimiters, quotes, escapes, non-UTF-8.
const INTERESTING: &[u8] = b".|=;,:\"\\/ \t\r\n\0{}[]%-_+~\x7f\x80\xc3\xff";

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut input = corpus[rng.below(corpus.len())].clone();
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                let byte = if rng.below(2) == 0 {
                    INTERESTING[rng.below(INTERESTING.len())]
                } else {
                    rng.next() as u8
                };
                input.insert(i, byte);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                input.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let copy = input[i..i + n].to_vec();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, copy);
            }
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(input.len() + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => input.truncate(rng.below(len)),
            _ => {
                let i = rng.below(len + 1);
                let n = rng.below(8);
                input.splice(i..i, std::iter::repeat_n(rng.next() as u8, n));
            }
        }
    }
    input
}

/// Tokens of `kind` signed by the test key ring: the only ones that may verify.
fn signed_seeds(kind: TokenKind) -> Vec<Vec<u8>> {
    let ring = keys();
    let t = now();
    let mut with_ext = Claims::new("concert", "visitor-ext", t - 1, t + 600);
    with_ext.extensions.push(Extension {
        tag: 1,
        value: vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    });
    [
        Claims::new("concert", "alice", t - 1, t + 600),
        Claims::new("concert", "Zm9vYmFyYmF6cXV4cXV1eA", t - 60, t + 86_400),
        Claims::new("other", "bob", t - 1, t + 600),
        with_ext,
    ]
    .iter()
    .filter_map(|c| ring.mint(kind, c).ok())
    .map(String::into_bytes)
    .collect()
}

fn token_target(name: &'static str, kind: TokenKind) -> Target {
    let ring: KeyRing = keys();
    let valid: HashSet<Vec<u8>> = signed_seeds(kind).into_iter().collect();
    let mut seeds: Vec<Vec<u8>> = valid.iter().cloned().collect();
    // A well-formed token from a key the ring does not hold, and the other kind.
    if let Ok(foreign) = KeyRing::from_json(crate::fixtures::FOREIGN_KEYS_JSON) {
        let t = now();
        seeds.extend(
            foreign
                .mint(kind, &Claims::new("concert", "mallory", t - 1, t + 600))
                .map(String::into_bytes),
        );
    }
    let other = match kind {
        TokenKind::Pass => TokenKind::Ticket,
        _ => TokenKind::Pass,
    };
    seeds.extend(signed_seeds(other));
    Target {
        name,
        seeds,
        check: Box::new(move |input| {
            let _ = parse_unverified(input);
            let t = now();
            let verdict = ring.verify(kind, input, Validity::at(t, 5), Some("concert"));
            let unscoped = ring.verify_signature(kind, input);
            match (verdict.is_ok() || unscoped.is_ok(), valid.contains(input)) {
                (false, _) => Verdict::Rejected,
                (true, true) => Verdict::Accepted,
                (true, false) => Verdict::FalseAccept,
            }
        }),
    }
}

fn filter_config_target() -> Target {
    let seeds = vec![
        filter_config(json!({})).into_bytes(),
        filter_config(json!({
            "client_rate_limit": {"requests_per_second": 5, "burst": 10},
            "visitor_rate_limit": null,
            "queue_rate_limit": {"requests_per_second": 100, "burst": 100},
            "bypass_prefixes": ["/static/", "/favicon.ico"]
        }))
        .into_bytes(),
        b"{}".to_vec(),
        b"[]".to_vec(),
    ];
    Target {
        name: "filter-config",
        seeds,
        check: Box::new(|input| match Config::from_json(input) {
            Ok(config) => {
                // A configuration that loads must also run.
                let engine = Engine::new(config);
                let request = Request {
                    path: Some(b"/reserve"),
                    source_address: Some(b"127.0.0.1:5000"),
                    ..Request::default()
                };
                let _ = engine.decide(&request, now() * 1000, &MemoryStore::default());
                Verdict::Accepted
            }
            Err(_) => Verdict::Rejected,
        }),
    }
}

/// Inputs are serialized proxy-wasm header maps, as Envoy hands them to the filter.
fn filter_request_target() -> Target {
    let passes = signed_seeds(TokenKind::Pass);
    let ring = keys();
    let t = now();
    let expired = pass_with(&ring, "concert", "late", t - 7200, t - 3600).into_bytes();
    let config = Config::from_json(filter_config(json!({})).as_bytes()).expect("test config");
    let engine = Engine::new(config);
    let map = |headers: &[(&[u8], &[u8])]| serialize_header_map(headers);
    let mut seeds = Vec::new();
    for pass in passes.iter().chain([&expired]) {
        let cookie = [b"theme=dark; wr_pass=".as_slice(), pass, b"; x=1"].concat();
        seeds.push(map(&[
            (b":method", b"GET"),
            (b":path", b"/reserve/seat?id=1"),
            (b"accept", b"text/html"),
            (b"cookie", &cookie),
            (b"x-wr-visitor", b"spoofed"),
            (b"X_WR_Event", b"spoofed"),
        ]));
    }
    seeds.push(map(&[(b":path", b"/v1/events/concert/join")]));
    seeds.push(map(&[(b":path", b"/static/app.js"), (b"cookie", b"a=b")]));
    seeds.push(map(&[(b":path", b"/reserve/../admin"), (b"cookie", b"")]));
    let valid: Vec<Vec<u8>> = passes;
    Target {
        name: "filter-request",
        seeds,
        check: Box::new(move |input| {
            let Some(headers) = parse_header_map(input) else {
                return Verdict::Rejected;
            };
            let request = engine.read_request(&headers, Some(b"10.1.2.3:4567"));
            let store = MemoryStore::default();
            let action = engine.decide(&request, now() * 1000, &store).action;
            if let Action::Forward { remove, .. } = &action {
                // Every spelling of a header only the filter may set is removed.
                let owned = engine.config().owned_headers();
                let kept = headers.iter().any(|(name, _)| {
                    owned.iter().any(|o| same_header_name(name, o))
                        && !remove.contains(&name.to_ascii_lowercase())
                });
                if kept {
                    return Verdict::FalseAccept;
                }
            }
            match action {
                Action::Forward {
                    identity: Some((visitor, event)),
                    ..
                } => {
                    // Admitted: some cookie must carry a validly signed pass for
                    // exactly this visitor and event.
                    let backed = valid.iter().any(|pass| {
                        request
                            .cookies
                            .iter()
                            .any(|c| c.windows(pass.len()).any(|w| w == pass.as_slice()))
                            && ring
                                .verify_signature(TokenKind::Pass, pass)
                                .is_ok_and(|c| c.visitor == visitor && c.event == event)
                    });
                    if backed {
                        Verdict::Accepted
                    } else {
                        Verdict::FalseAccept
                    }
                }
                _ => Verdict::Rejected,
            }
        }),
    }
}

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
    let seeds = vec![
        request(
            "POST /v1/events/fz/join",
            b"idempotency-key: 0f8fad5b-d9cb-469f-a165-70867728950e\r\n",
            b"",
        ),
        request("POST /v1/events/fz/join", ticket_header.as_bytes(), b"{}"),
        request("GET /v1/events/fz/status", ticket_header.as_bytes(), b""),
        request("GET /v1/events/fz/status", ticket_cookie.as_bytes(), b""),
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

/// Shared data in memory, for running the filter's decision natively.
#[derive(Default)]
struct MemoryStore {
    data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.data.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let mut data = self.data.borrow_mut();
        let current = data.get(key).map(|(_, c)| *c).unwrap_or(0);
        if cas != 0 && cas != current {
            return Err(StoreError::CasMismatch);
        }
        data.insert(key.to_owned(), (value.to_vec(), current + 1));
        Ok(())
    }
}
