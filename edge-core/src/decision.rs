//! The per-request decision, as a pure function of the request, the clock and the
//! shared store (the engine remembers which passes' signatures it has verified, which
//! changes how fast it decides, never what). The proxy-wasm glue only gathers inputs and
//! applies the outcome.

use std::sync::Mutex;

use wr_pass::wire::{EVENTS_PREFIX, PASS_REVOKED_QUERY, SESSION_ENDED_QUERY, WAITING_ROOM_PREFIX};
use wr_pass::{Rejection, TokenKind, Validity};

use self::rejections::describe;
use crate::classify::{classify, PathClass};
use crate::client::client_key;
use crate::config::{Config, EventConfig};
use crate::cookies;
use crate::ended::EndedSessions;
use crate::metrics::{Counter, Counters};
use crate::pass_cache::{Admitted, PassCache};
use crate::rate_limit::{Limited, Limiter, SharedStore};
use crate::reply::{json_error, redirect, too_many_requests, LocalReply};
use crate::request::Request;
use crate::session_end::Session;

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
        /// The admitted session, for the response ([`Engine::respond`]); only when
        /// the backend may end sessions (`session_end`).
        session: Option<Box<Session>>,
    },
    /// Answer locally; the request goes no further.
    Reply(LocalReply),
}

/// What is derived once per verified pass from its visitor id (hashing on every
/// request was a fair part of what an admitted request cost).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Fingerprints {
    /// The visitor's fingerprint in the visitor limiter (0 without one).
    limiter: u64,
    /// The (event, visitor) fingerprint among the ended sessions (0 when the backend
    /// cannot end sessions).
    ended: u64,
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
    /// Passes whose signature this engine has verified (see [`PassCache`]), with the
    /// visitor's fingerprints.
    passes: Mutex<PassCache<Fingerprints>>,
    client: Option<Limiter>,
    visitor: Option<Limiter>,
    queue: Option<Limiter>,
    in_line: Option<Limiter>,
    ended: EndedSessions,
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
        let ended = EndedSessions::new(config.keys.derive(b"edge-ended-sessions"));
        Engine {
            ended,
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

    /// The sessions ended at this edge.
    pub(crate) fn ended(&self) -> &EndedSessions {
        &self.ended
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
        if request.header_bytes > self.config.max_request_header_bytes {
            return headers_too_large();
        }
        if request.bad_authority {
            return host_rejected();
        }
        let Some(path) = request.path else {
            return path_rejected();
        };
        let event = match classify(&self.config, path) {
            PathClass::NotNormalized => return path_rejected(),
            PathClass::Bypass => return forward(request, None, None, &[Counter::Bypassed]),
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
        match self.verify_pass(request, event, now_ms / 1000) {
            Ok((admitted, _)) if self.session_has_ended(store, &admitted, now_ms) => {
                self.session_ended(request, path, &event.id)
            }
            Ok((
                Admitted {
                    visitor, derived, ..
                },
                pass,
            )) => {
                let derived = derived.limiter;
                if let Some(limiter) = &self.visitor {
                    // `derived` is the visitor's fingerprint (see `verify_pass`).
                    if let Err(limited) = limiter.take_fingerprinted(store, derived, now_ms) {
                        return rate_limited(limited, Counter::RateLimitedVisitor);
                    }
                }
                let identity = Some((visitor, event.id.as_str()));
                let session = self.config.session_end.as_ref().map(|_| {
                    Box::new(Session {
                        event: event.id.clone(),
                        // A pass that verified is base64url and dots: ASCII.
                        pass: std::str::from_utf8(pass).unwrap_or_default().to_owned(),
                    })
                });
                forward(request, identity, session, &[Counter::Admitted])
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
            return forward(request, None, None, &[Counter::QueueForwarded]).bound_for_queue();
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
        forward(request, None, None, &counters).bound_for_queue()
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
    /// fingerprint in the visitor limiter (0 without one), and the pass; or why the
    /// first candidate failed (`None`: there was no pass at all).
    fn verify_pass<'r>(
        &self,
        request: &Request<'r>,
        event: &EventConfig,
        now: u64,
    ) -> Result<(Admitted<Fingerprints>, &'r [u8]), Option<Rejection>> {
        let wire = &self.config.wire;
        let validity = Validity::at(now, wire.clock_skew_seconds)
            .with_max_lifetime(wire.max_pass_lifetime_seconds)
            .with_not_before(event.not_before);
        let event = event.id.as_str();
        let mut first_failure = None;
        let fingerprint = |visitor: &str| Fingerprints {
            limiter: self
                .visitor
                .as_ref()
                .map_or(0, |l| l.fingerprint(visitor.as_bytes())),
            ended: match self.config.session_end {
                Some(_) => self.ended.fingerprint(event, visitor),
                None => 0,
            },
        };
        let mut passes = self.passes.lock().unwrap_or_else(|p| p.into_inner());
        for candidate in cookies::find(&request.cookies, wire.pass_cookie.as_bytes()) {
            match passes.verify(&self.config.keys, candidate, validity, event, fingerprint) {
                Ok(admitted) => return Ok((admitted, candidate)),
                Err(reason) => {
                    first_failure.get_or_insert(reason);
                }
            }
        }
        Err(first_failure)
    }

    /// True if the backend ended this pass's session at this edge (only looked up when
    /// the backend may end sessions).
    fn session_has_ended(
        &self,
        store: &dyn SharedStore,
        admitted: &Admitted<Fingerprints>,
        now_ms: u64,
    ) -> bool {
        self.config.session_end.is_some()
            && self.ended.has_ended_fingerprint(
                store,
                admitted.derived.ended,
                admitted.issued_at,
                now_ms / 1000,
            )
    }

    /// The answer to a pass whose session the backend ended: a browser goes to the
    /// event's page, which says the session is over ([`SESSION_ENDED_QUERY`]); an API
    /// client gets `403 SESSION_ENDED`.
    fn session_ended(&self, request: &Request, path: &[u8], event: &str) -> Decision<'static> {
        let waiting_room = self.config.waiting_room_for(event);
        if request.wants_html() {
            let page = format!("{waiting_room}?{SESSION_ENDED_QUERY}");
            return Decision {
                action: Action::Reply(redirect(&page, path)),
                counters: Counters::from_slice(&[Counter::PassSessionEnded, Counter::Redirected]),
            };
        }
        let message = "The session has ended: join the waiting room again to come back.";
        let reply = json_error(403, "SESSION_ENDED", message, None, Some(&waiting_room));
        Decision {
            action: Action::Reply(reply),
            counters: Counters::from_slice(&[Counter::PassSessionEnded, Counter::Denied]),
        }
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
            // A revoked pass: the page says so, and joins the line again by itself.
            let page = match reason {
                Some(Rejection::Revoked) => format!("{waiting_room}?{PASS_REVOKED_QUERY}"),
                _ => waiting_room,
            };
            return Decision {
                action: Action::Reply(redirect(&page, path)),
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

fn forward<'c>(
    request: &Request,
    identity: Option<(String, &'c str)>,
    session: Option<Box<Session>>,
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
            to_queue: false,
            session,
        },
        counters: Counters::from_slice(counters),
    }
}

impl Decision<'_> {
    /// The same forward, to origin-queue.
    fn bound_for_queue(mut self) -> Self {
        if let Action::Forward { to_queue, .. } = &mut self.action {
            *to_queue = true;
        }
        self
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
    refused(404, "NOT_FOUND", "Not found.", Counter::QueueRouteRefused)
}

/// More header bytes than the edge accepts (`max_request_header_bytes`): refused for this
/// request alone, with no `Retry-After` (the same request can never succeed), before
/// anything else is read.
fn headers_too_large() -> Decision<'static> {
    let message = "The request headers are too large.";
    refused(431, "HEADERS_TOO_LARGE", message, Counter::HeadersTooLarge)
}

/// A host no server can route (see [`Request::bad_authority`]): refused here, not left
/// for the next hop to fail as a connection error.
fn host_rejected() -> Decision<'static> {
    let message = "The Host header must name one host.";
    refused(400, "HOST_INVALID", message, Counter::HostRejected)
}

fn path_rejected() -> Decision<'static> {
    let message = "The request path is not in normal form.";
    refused(400, "PATH_NOT_NORMALIZED", message, Counter::PathRejected)
}

/// A JSON refusal without `Retry-After` or waiting room, counted by `counter`.
fn refused(status: u32, code: &str, message: &str, counter: Counter) -> Decision<'static> {
    Decision {
        action: Action::Reply(json_error(status, code, message, None, None)),
        counters: Counters::from_slice(&[counter]),
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

mod rejections;
#[cfg(test)]
mod tests;
