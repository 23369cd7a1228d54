//! The per-request decision, as a pure function of the request, the clock and the
//! shared store (the engine remembers which passes' signatures it has verified, which
//! changes how fast it decides, never what). The proxy-wasm glue only gathers inputs and
//! applies the outcome.

use std::sync::Mutex;

use wr_pass::wire::{EVENTS_PREFIX, WAITING_ROOM_PREFIX};
use wr_pass::{Rejection, TokenKind, Validity};

use crate::classify::{classify, PathClass};
use crate::client::client_key;
use crate::config::Config;
use crate::cookies;
use crate::metrics::{Counter, Counters};
use crate::pass_cache::{Admitted, PassCache};
use crate::rate_limit::{Limited, Limiter, SharedStore};
use crate::reply::{json_error, redirect, too_many_requests, LocalReply};
use crate::request::Request;

/// Ticket candidates checked per request at most (each costs an HMAC); a visitor has one.
const MAX_TICKET_CANDIDATES: usize = 4;

/// What to do with the request; it borrows from the engine's configuration.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'c> {
    /// Send it on: first remove the `remove` headers (client-sent spellings of the
    /// headers only the filter sets), then, with `identity`, set the identity headers
    /// to (visitor, event) from the verified pass, and with `to_queue`, tell
    /// origin-queue the edge's wire settings.
    Forward {
        /// Names (lower-cased) of client headers to remove.
        remove: Vec<Vec<u8>>,
        /// Visitor and event of the verified pass, for protected paths.
        identity: Option<(String, &'c str)>,
        /// True for requests to origin-queue.
        to_queue: bool,
    },
    /// Answer locally; the request goes no further.
    Reply(LocalReply),
}

/// An action and the counters it increments.
#[derive(Debug, PartialEq, Eq)]
pub struct Decision<'c> {
    /// What to do.
    pub action: Action<'c>,
    /// Counters to increment by one.
    pub counters: Counters,
}

/// A validated configuration and its limiters, built once per configure.
pub struct Engine {
    config: Config,
    /// Passes whose signature this engine has verified (see [`PassCache`]).
    passes: Mutex<PassCache>,
    client: Option<Limiter>,
    visitor: Option<Limiter>,
    queue: Option<Limiter>,
    in_line: Option<Limiter>,
}

impl Engine {
    /// Builds the limiters for `config`.
    pub fn new(config: Config) -> Engine {
        let hash_key = config.keys.derive(b"edge-rate-limit-slots");
        let (slots, lease) = (config.rate_limit_slots, config.rate_limit_lease);
        let limiter =
            |namespace, limit, slots| Limiter::new(namespace, limit, slots, hash_key, lease);
        let client = config
            .client_rate_limit
            .map(|l| limiter("client", l, slots));
        let visitor = config
            .visitor_rate_limit
            .map(|l| limiter("visitor", l, slots));
        let queue = config.queue_rate_limit.map(|l| limiter("queue", l, 1));
        let in_line = config.in_line_rate_limit.map(|l| limiter("in_line", l, 1));
        let passes = Mutex::new(PassCache::new(config.keys.derive(b"edge-pass-cache")));
        Engine {
            config,
            passes,
            client,
            visitor,
            queue,
            in_line,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Gathers the inputs of one request from its headers (see [`Request::from_pairs`]).
    pub fn read_request<'a, H: AsRef<[u8]>>(
        &self,
        headers: &'a [(H, H)],
        source_address: Option<&'a [u8]>,
    ) -> Request<'a> {
        let pairs = headers.iter().map(|(n, v)| (n.as_ref(), v.as_ref()));
        self.read_pairs(pairs, source_address)
    }

    /// [`Engine::read_request`] from (name, value) pairs read one by one (see
    /// [`Request::from_pairs`]).
    pub fn read_pairs<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        source_address: Option<&'a [u8]>,
    ) -> Request<'a> {
        Request::from_pairs(pairs, source_address, &self.config.owned_headers())
    }

    /// Decides what happens to `request` at `now_ms` (unix milliseconds).
    pub fn decide(&self, request: &Request, now_ms: u64, store: &dyn SharedStore) -> Decision<'_> {
        let source = || request.source_address.map(<[u8]>::to_vec);
        self.decide_with_source(request, &source, now_ms, store)
    }

    /// [`Engine::decide`] for a runtime where reading the client's address costs
    /// something (a proxy-wasm property is a host call): `source` is asked at most
    /// once, and only when a per-address limit applies, instead of
    /// `request.source_address`.
    ///
    /// Who is limited per address: requests without a valid pass on protected paths,
    /// and all traffic to origin-queue. A request with a valid pass is limited per
    /// visitor instead: everyone behind one address (a carrier NAT, an office) has
    /// waited their own turn, and an address cannot hold more passes than its visitors
    /// waited for.
    pub fn decide_with_source(
        &self,
        request: &Request,
        source: &dyn Fn() -> Option<Vec<u8>>,
        now_ms: u64,
        store: &dyn SharedStore,
    ) -> Decision<'_> {
        let Some(path) = request.path else {
            return path_rejected();
        };
        let event = match classify(&self.config, path) {
            PathClass::NotNormalized => return path_rejected(),
            PathClass::Bypass => return forward(request, None, false, &[Counter::Bypassed]),
            PathClass::Queue if !is_public_queue_route(path) => return queue_route_refused(),
            PathClass::Queue => None,
            PathClass::Protected(event) => Some(event),
        };
        let per_address = || match &self.client {
            Some(limiter) => {
                let key = client_key(source().as_deref());
                limiter
                    .take(store, &key, now_ms)
                    .map_err(|limited| rate_limited(limited, Counter::RateLimitedClient))
            }
            None => Ok(()),
        };
        let Some(event) = event else {
            if let Err(limited) = per_address() {
                return limited;
            }
            return self.to_queue(request, now_ms, store);
        };
        match self.verify_pass(request, &event.id, now_ms / 1000) {
            Ok(Admitted { visitor, derived }) => {
                if let Some(limiter) = &self.visitor {
                    // `derived` is the visitor's fingerprint (see `verify_pass`).
                    if let Err(limited) = limiter.take_fingerprinted(store, derived, now_ms) {
                        return rate_limited(limited, Counter::RateLimitedVisitor);
                    }
                }
                let identity = Some((visitor, event.id.as_str()));
                forward(request, identity, false, &[Counter::Admitted])
            }
            Err(reason) => match per_address() {
                Err(limited) => limited,
                Ok(()) => self.not_admitted(request, path, &event.id, reason),
            },
        }
    }

    /// Traffic for origin-queue. A visitor already in line (a valid ticket, for any
    /// event) draws on the in-line budget and their own visitor bucket; anyone else on
    /// the queue budget. So a flood of new visitors, however large, cannot take the
    /// status polls of those in line, whose places the abandonment sweep would
    /// otherwise drop; and a ticket cannot be forged to get past the queue budget.
    fn to_queue(&self, request: &Request, now_ms: u64, store: &dyn SharedStore) -> Decision<'_> {
        let Some(visitor) = self.ticket_visitor(request, now_ms / 1000) else {
            if let Some(limiter) = &self.queue {
                if let Err(limited) = limiter.take(store, b"all", now_ms) {
                    return rate_limited(limited, Counter::RateLimitedQueue);
                }
            }
            return forward(request, None, true, &[Counter::QueueForwarded]);
        };
        if let Some(limiter) = &self.visitor {
            if let Err(limited) = limiter.take(store, visitor.as_bytes(), now_ms) {
                return rate_limited(limited, Counter::RateLimitedVisitor);
            }
        }
        if let Some(limiter) = &self.in_line {
            if let Err(limited) = limiter.take(store, b"all", now_ms) {
                return rate_limited(limited, Counter::RateLimitedInLine);
            }
        }
        let counters = [Counter::QueueForwarded, Counter::QueueForwardedInLine];
        forward(request, None, true, &counters)
    }

    /// The visitor id of the first valid, unexpired ticket in the `x-wr-ticket` headers
    /// or the ticket cookies (origin-queue reads them in that order).
    fn ticket_visitor(&self, request: &Request, now: u64) -> Option<String> {
        let cookies = cookies::find(&request.cookies, self.config.wire.ticket_cookie.as_bytes());
        let validity = Validity::at(now, self.config.wire.clock_skew_seconds);
        request
            .ticket_headers
            .iter()
            .copied()
            .chain(cookies)
            .take(MAX_TICKET_CANDIDATES)
            .find_map(|candidate| {
                self.config
                    .keys
                    .verify(TokenKind::Ticket, candidate, validity, None)
                    .ok()
            })
            .map(|claims| claims.visitor)
    }

    /// The visitor id of the first valid pass among the candidates, with its
    /// fingerprint in the visitor limiter (0 without one), or why the first candidate
    /// failed (`None`: there was no pass at all).
    fn verify_pass(
        &self,
        request: &Request,
        event: &str,
        now: u64,
    ) -> Result<Admitted, Option<Rejection>> {
        let wire = &self.config.wire;
        let validity = Validity::at(now, wire.clock_skew_seconds)
            .with_max_lifetime(wire.max_pass_lifetime_seconds);
        let mut first_failure = None;
        let fingerprint = |visitor: &str| {
            let limiter = self.visitor.as_ref();
            limiter.map_or(0, |l| l.fingerprint(visitor.as_bytes()))
        };
        let mut passes = self.passes.lock().unwrap_or_else(|p| p.into_inner());
        for candidate in cookies::find(&request.cookies, wire.pass_cookie.as_bytes()) {
            match passes.verify(&self.config.keys, candidate, validity, event, fingerprint) {
                Ok(admitted) => return Ok(admitted),
                Err(reason) => {
                    first_failure.get_or_insert(reason);
                }
            }
        }
        Err(first_failure)
    }

    fn not_admitted(
        &self,
        request: &Request,
        path: &[u8],
        event: &str,
        reason: Option<Rejection>,
    ) -> Decision<'static> {
        let (counter, code, message) = describe(reason);
        let waiting_room = self.config.waiting_room_for(event);
        if request.wants_html() {
            return Decision {
                action: Action::Reply(redirect(&waiting_room, path)),
                counters: Counters::from_slice(&[counter, Counter::Redirected]),
            };
        }
        let retry = Some(self.config.denied_retry_after_seconds);
        Decision {
            action: Action::Reply(json_error(403, code, message, retry, Some(&waiting_room))),
            counters: Counters::from_slice(&[counter, Counter::Denied]),
        }
    }
}

fn describe(reason: Option<Rejection>) -> (Counter, &'static str, &'static str) {
    const INVALID: &str = "The admission pass is not valid.";
    match reason {
        None => (
            Counter::NoPass,
            "NOT_ADMITTED",
            "An admission pass is required: join the waiting room.",
        ),
        Some(Rejection::Malformed) => (Counter::PassMalformed, "PASS_INVALID", INVALID),
        Some(Rejection::UnsupportedVersion) => (Counter::PassUnsupported, "PASS_INVALID", INVALID),
        Some(Rejection::UnknownKey) => (Counter::PassUnknownKey, "PASS_INVALID", INVALID),
        Some(Rejection::BadSignature) => (Counter::PassBadSignature, "PASS_INVALID", INVALID),
        Some(Rejection::Expired) => (
            Counter::PassExpired,
            "PASS_EXPIRED",
            "The admission pass has expired.",
        ),
        Some(Rejection::NotYetValid) => (
            Counter::PassNotYetValid,
            "PASS_NOT_YET_VALID",
            "The admission pass is not valid yet.",
        ),
        Some(Rejection::WrongEvent) => (
            Counter::PassWrongEvent,
            "PASS_WRONG_EVENT",
            "The admission pass is for another event.",
        ),
        Some(Rejection::LifetimeTooLong) => (Counter::PassLifetimeTooLong, "PASS_INVALID", INVALID),
    }
}

fn forward<'c>(
    request: &Request,
    identity: Option<(String, &'c str)>,
    to_queue: bool,
    counters: &[Counter],
) -> Decision<'c> {
    let remove = request
        .spoofed
        .iter()
        .map(|name| name.to_ascii_lowercase())
        .collect();
    Decision {
        action: Action::Forward {
            remove,
            identity,
            to_queue,
        },
        counters: Counters::from_slice(counters),
    }
}

/// True for origin-queue's public routes: the visitor API and the waiting-room page.
/// Everything else of origin-queue (its admin API, `/metrics`, `/readyz`) is for its
/// own port: an edge whose `queue_prefixes` take in more (the default `/v1/` does) must
/// not forward it there, whatever the proxy's routes say.
fn is_public_queue_route(path: &[u8]) -> bool {
    [EVENTS_PREFIX, WAITING_ROOM_PREFIX]
        .iter()
        .any(|prefix| path.starts_with(prefix.as_bytes()))
}

fn queue_route_refused() -> Decision<'static> {
    Decision {
        action: Action::Reply(json_error(404, "NOT_FOUND", "Not found.", None, None)),
        counters: Counters::from_slice(&[Counter::QueueRouteRefused]),
    }
}

fn path_rejected() -> Decision<'static> {
    let reply = json_error(
        400,
        "PATH_NOT_NORMALIZED",
        "The request path is not in normal form.",
        None,
        None,
    );
    Decision {
        action: Action::Reply(reply),
        counters: Counters::from_slice(&[Counter::PathRejected]),
    }
}

fn rate_limited(limited: Limited, counter: Counter) -> Decision<'static> {
    let (retry, mut counters) = match limited {
        Limited::Empty { retry_after_secs } => (retry_after_secs, Counters::from_slice(&[counter])),
        Limited::Contention | Limited::StoreFailed => (
            1,
            Counters::from_slice(&[counter, Counter::RateLimitContention]),
        ),
    };
    counters.dedup();
    Decision {
        action: Action::Reply(too_many_requests(retry)),
        counters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::KEYS;
    use crate::local_store::LocalStore;
    use wr_pass::{Claims, KeyRing};

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
    fn rate_limits_per_client_and_on_the_queue() {
        let e = engine(LIMITS);
        let store = LocalStore::default();
        for _ in 0..3 {
            assert_eq!(
                status(&run_in(&e, &store, "/reserve", None, None, "1.1.1.1:1")),
                403
            );
        }
        let d = run_in(&e, &store, "/reserve", None, None, "1.1.1.1:2");
        assert_eq!((status(&d), code(&d)), (429, "RATE_LIMITED".to_owned()));
        // A different client is unaffected; the queue cap is global (burst 2).
        assert_eq!(
            status(&run_in(&e, &store, "/v1/events/x", None, None, "2.2.2.2:1")),
            200
        );
        assert_eq!(
            status(&run_in(&e, &store, "/v1/events/x", None, None, "3.3.3.3:1")),
            200
        );
        let d = run_in(&e, &store, "/v1/events/x", None, None, "4.4.4.4:1");
        assert_eq!(
            (status(&d), d.counters.to_vec()),
            (429, vec![Counter::RateLimitedQueue])
        );
        // Bypass paths are never limited.
        assert_eq!(
            status(&run_in(
                &e,
                &store,
                "/static/a.css",
                None,
                None,
                "1.1.1.1:1"
            )),
            200
        );
    }

    fn pass_of(visitor: &str) -> String {
        let ring = KeyRing::from_json(KEYS).unwrap();
        let claims = Claims::new("concert", visitor, NOW - 1, NOW + 600);
        format!("wr_pass={}", ring.mint(TokenKind::Pass, &claims).unwrap())
    }

    #[test]
    fn visitors_with_passes_behind_one_address_are_not_limited_per_address() {
        let e = engine(LIMITS);
        let store = LocalStore::default();
        // The client limit's burst is 3; ten admitted visitors share one address.
        for i in 0..10 {
            let cookie = pass_of(&format!("vis-{i}"));
            let d = run_in(&e, &store, "/reserve", Some(&cookie), None, "1.1.1.1:1");
            assert_eq!(d.counters.to_vec(), vec![Counter::Admitted], "visitor {i}");
        }
    }

    #[test]
    fn the_address_is_read_only_when_a_per_address_limit_applies() {
        let e = engine(LIMITS);
        let store = LocalStore::default();
        let asked = std::cell::Cell::new(0);
        let source = || {
            asked.set(asked.get() + 1);
            Some(b"1.1.1.1:1".to_vec())
        };
        let decide = |path: &str, cookie: &str| {
            let headers = vec![
                (b":path".to_vec(), path.as_bytes().to_vec()),
                (b"cookie".to_vec(), cookie.as_bytes().to_vec()),
            ];
            let request = e.read_request(&headers, None);
            status(&e.decide_with_source(&request, &source, NOW * 1000, &store))
        };
        assert_eq!(decide("/reserve", &pass_of("vis-1")), 200);
        assert_eq!(decide("/static/a.css", ""), 200);
        assert_eq!(asked.get(), 0);
        assert_eq!(decide("/reserve", "wr_pass=forged"), 403);
        assert_eq!(decide("/v1/events/concert/join", ""), 200);
        assert_eq!(asked.get(), 2);
    }

    #[test]
    fn forged_passes_from_one_address_are_limited_per_address() {
        let e = engine(LIMITS);
        let store = LocalStore::default();
        let forged = format!("{}x", pass_of("vis-1"));
        let statuses: Vec<u32> = (0..4)
            .map(|_| {
                status(&run_in(
                    &e,
                    &store,
                    "/reserve",
                    Some(&forged),
                    None,
                    "1.1.1.1:1",
                ))
            })
            .collect();
        assert_eq!(statuses, [403, 403, 403, 429]);
    }

    #[test]
    fn visitor_limit_applies_after_admission() {
        let e = engine(
            r#","client_rate_limit":null,"visitor_rate_limit":{"requests_per_second":1,"burst":1}"#,
        );
        let store = LocalStore::default();
        let cookie = format!("wr_pass={}", pass("concert", NOW + 60));
        assert_eq!(
            status(&run_in(
                &e,
                &store,
                "/reserve",
                Some(&cookie),
                None,
                "1.1.1.1:1"
            )),
            200
        );
        let d = run_in(&e, &store, "/reserve", Some(&cookie), None, "9.9.9.9:1");
        assert_eq!(
            (status(&d), d.counters.to_vec()),
            (429, vec![Counter::RateLimitedVisitor])
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

    fn ticket(visitor: &str, exp: u64) -> String {
        let ring = KeyRing::from_json(KEYS).unwrap();
        ring.mint(
            TokenKind::Ticket,
            &Claims::new("concert", visitor, exp - 600, exp),
        )
        .unwrap()
    }

    fn run_with<'e>(e: &'e Engine, s: &LocalStore, headers: &[(&str, &str)]) -> Decision<'e> {
        let mut all = vec![(b":path".to_vec(), b"/v1/events/concert/status".to_vec())];
        all.extend(
            headers
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())),
        );
        let request = e.read_request(&all, Some(b"5.5.5.5:1".as_slice()));
        e.decide(&request, NOW * 1000, s)
    }

    #[test]
    fn a_join_flood_cannot_take_the_polls_of_visitors_in_line() {
        let e = engine(
            r#","client_rate_limit":null,"visitor_rate_limit":{"requests_per_second":1,"burst":2},
               "queue_rate_limit":{"requests_per_second":1,"burst":2},
               "in_line_rate_limit":{"requests_per_second":1,"burst":3}"#,
        );
        let store = LocalStore::default();
        // New visitors use up the queue budget...
        for _ in 0..2 {
            assert_eq!(status(&run_with(&e, &store, &[])), 200);
        }
        let d = run_with(&e, &store, &[]);
        assert_eq!(
            (status(&d), d.counters.to_vec()),
            (429, vec![Counter::RateLimitedQueue])
        );
        // ...and so do tickets that are forged, expired or of another kind.
        // vis-2's claims under vis-1's signature.
        let (one, two) = (ticket("vis-1", NOW + 600), ticket("vis-2", NOW + 600));
        let part = |t: &str, i: usize| t.split('.').nth(i).unwrap().to_owned();
        let forged = format!("t1.k1.{}.{}", part(&two, 2), part(&one, 3));
        for bad in [
            format!("wr_ticket={}x", ticket("vis-1", NOW + 600)),
            format!("wr_ticket={forged}"),
            format!("wr_ticket={}", ticket("vis-1", NOW - 3600)),
            format!("wr_ticket={}", pass("concert", NOW + 600)),
        ] {
            let d = run_with(&e, &store, &[("cookie", &bad)]);
            assert_eq!(
                d.counters.to_vec(),
                vec![Counter::RateLimitedQueue],
                "{bad}"
            );
        }
        // A visitor in line still gets through, by cookie or by header.
        let cookie = format!("wr_ticket={}", ticket("vis-1", NOW + 600));
        let d = run_with(&e, &store, &[("cookie", &cookie)]);
        assert_eq!(
            (status(&d), d.counters.to_vec()),
            (
                200,
                vec![Counter::QueueForwarded, Counter::QueueForwardedInLine]
            )
        );
        let header = ticket("vis-2", NOW + 600);
        let d = run_with(&e, &store, &[("X-WR-Ticket", &header)]);
        assert_eq!(status(&d), 200);
        // Their own bucket bounds each of them; the in-line budget bounds all of them.
        let d = run_with(&e, &store, &[("cookie", &cookie)]);
        assert_eq!(status(&d), 200);
        let d = run_with(&e, &store, &[("cookie", &cookie)]);
        assert_eq!(d.counters.to_vec(), vec![Counter::RateLimitedVisitor]);
        let third = format!("wr_ticket={}", ticket("vis-3", NOW + 600));
        let d = run_with(&e, &store, &[("cookie", &third)]);
        assert_eq!(d.counters.to_vec(), vec![Counter::RateLimitedInLine]);
    }

    #[test]
    fn only_the_first_few_ticket_candidates_are_checked() {
        let e = engine(r#","queue_rate_limit":{"requests_per_second":1,"burst":1}"#);
        let store = LocalStore::default();
        let junk = "wr_ticket=t1.k1.e30.AAAA; ".repeat(MAX_TICKET_CANDIDATES);
        let valid = ticket("vis-1", NOW + 600);
        let late = format!("{junk}wr_ticket={valid}");
        assert_eq!(
            run_with(&e, &store, &[("cookie", &late)]).counters.to_vec(),
            vec![Counter::QueueForwarded]
        );
        let d = run_with(
            &e,
            &store,
            &[("cookie", &format!("wr_ticket={valid}; {junk}"))],
        );
        assert_eq!(
            d.counters.to_vec(),
            vec![Counter::QueueForwarded, Counter::QueueForwardedInLine]
        );
    }
}
