//! The filter's JSON configuration, validated once at configure time.
//!
//! Every problem is reported, one line each, so an operator fixes a broken config in
//! one round trip. See "Configuration" in `docs/edge.md` for an example.

use serde::Deserialize;
use wr_pass::wire::{self, Wire};
use wr_pass::{validate_event_id, KeyRing};

mod checks;

use checks::{check_events, check_overlaps, check_prefixes, check_rate_limit};

use crate::path::{is_normal_path, ProtectedPrefix};
use crate::request::READ_HEADERS;
use crate::session_end::{self, RawSessionEnd, SessionEnd};

/// Most events one filter serves.
const MAX_EVENTS: usize = 64;
/// Most path prefixes in all lists together.
const MAX_PREFIXES: usize = 256;
/// Largest number of rate-limit slots (each costs ~100 bytes of shared data per worker set).
const MAX_SLOTS: u32 = 1 << 20;
/// Largest `rate_limit_lease`.
const MAX_LEASE: u32 = 1_000;
/// The earliest cut an event may name (2020-01-01): an earlier one is a typo (a time
/// in milliseconds is refused by the upper bound).
const EARLIEST_CUT: u64 = 1_577_836_800;
/// The latest (2100-01-01).
const LATEST_CUT: u64 = 4_102_444_800;
/// Smallest `max_request_header_bytes`: a browser's ordinary request (a few cookies, its
/// `user-agent`, `accept-*` and `sec-*` headers) must pass.
const MIN_REQUEST_HEADER_BYTES: usize = 8 * 1024;

/// A token bucket: sustained rate and burst size.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second (0.001 – 1,000,000).
    pub requests_per_second: f64,
    /// Requests allowed at once after a quiet period (1 – 1,000,000).
    pub burst: u32,
}

/// One event as written in the configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    id: String,
    protected_prefixes: Vec<String>,
    #[serde(default)]
    case_sensitive: bool,
    #[serde(default)]
    not_before: Option<u64>,
}

/// One event's protected paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventConfig {
    /// Event id, as in origin-queue and in the pass.
    pub id: String,
    /// Path prefixes that need a valid pass for this event.
    pub protected_prefixes: Vec<ProtectedPrefix>,
    /// The event's cut (unix seconds; 0: none): a pass issued before it is refused as
    /// revoked ([`wr_pass::Rejection::Revoked`]).
    pub not_before: u64,
}

fn default_visitor_header() -> String {
    wire::VISITOR_HEADER.into()
}
fn default_event_header() -> String {
    wire::EVENT_HEADER.into()
}
fn default_waiting_room_path() -> String {
    wire::WAITING_ROOM_PATH.into()
}
fn default_queue_prefixes() -> Vec<String> {
    vec![wire::API_PREFIX.into(), wire::WAITING_ROOM_PREFIX.into()]
}
fn default_pass_cookie() -> String {
    wire::PASS_COOKIE.into()
}
fn default_ticket_cookie() -> String {
    wire::TICKET_COOKIE.into()
}
fn default_clock_skew() -> u64 {
    wire::CLOCK_SKEW_SECONDS
}
fn default_max_pass_lifetime() -> u64 {
    wire::MAX_PASS_LIFETIME_SECONDS
}
fn default_denied_retry_after() -> u32 {
    5
}
fn default_max_request_header_bytes() -> usize {
    wire::MAX_REQUEST_HEADER_BYTES
}
fn default_slots() -> u32 {
    16_384
}
fn default_lease() -> u32 {
    16
}
fn default_client_limit() -> Option<RateLimit> {
    Some(RateLimit {
        requests_per_second: 50.0,
        burst: 100,
    })
}
fn default_queue_limit() -> Option<RateLimit> {
    Some(RateLimit {
        requests_per_second: 2_000.0,
        burst: 4_000,
    })
}

/// The configuration as written by the operator.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    keys: serde_json::Value,
    events: Vec<RawEvent>,
    #[serde(default = "default_pass_cookie")]
    pass_cookie: String,
    #[serde(default = "default_ticket_cookie")]
    ticket_cookie: String,
    #[serde(default = "default_clock_skew")]
    clock_skew_seconds: u64,
    #[serde(default = "default_max_pass_lifetime")]
    max_pass_lifetime_seconds: u64,
    #[serde(default = "default_visitor_header")]
    visitor_header: String,
    #[serde(default = "default_event_header")]
    event_header: String,
    #[serde(default = "default_waiting_room_path")]
    waiting_room_path: String,
    #[serde(default = "default_queue_prefixes")]
    queue_prefixes: Vec<String>,
    #[serde(default)]
    bypass_prefixes: Vec<String>,
    #[serde(default = "default_client_limit")]
    client_rate_limit: Option<RateLimit>,
    #[serde(default = "default_client_limit")]
    visitor_rate_limit: Option<RateLimit>,
    #[serde(default = "default_queue_limit")]
    queue_rate_limit: Option<RateLimit>,
    #[serde(default = "default_queue_limit")]
    in_line_rate_limit: Option<RateLimit>,
    #[serde(default = "default_slots")]
    rate_limit_slots: u32,
    #[serde(default = "default_lease")]
    rate_limit_lease: u32,
    #[serde(default = "default_denied_retry_after")]
    denied_retry_after_seconds: u32,
    #[serde(default = "default_max_request_header_bytes")]
    max_request_header_bytes: usize,
    #[serde(default = "session_end::default_section")]
    session_end: Option<RawSessionEnd>,
}

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Keys that verify passes.
    pub keys: KeyRing,
    /// Events and their protected prefixes.
    pub events: Vec<EventConfig>,
    /// What the edge and origin-queue must agree on: cookie names, the clock-skew
    /// leeway, the longest pass lifetime.
    pub wire: Wire,
    /// `wire` as the value of [`wire::WIRE_HEADER`], sent with every request forwarded
    /// to origin-queue.
    pub wire_header: String,
    /// Request header carrying the visitor id to the backend (set only by the filter).
    pub visitor_header: String,
    /// Request header carrying the event id to the backend (set only by the filter).
    pub event_header: String,
    /// Waiting-room page path with `{event}` in it.
    pub waiting_room_path: String,
    /// Prefixes forwarded to origin-queue.
    pub queue_prefixes: Vec<String>,
    /// Prefixes the filter leaves alone.
    pub bypass_prefixes: Vec<String>,
    /// Per client address (`None`: off).
    pub client_rate_limit: Option<RateLimit>,
    /// Per visitor: admitted (a pass) or in line (a ticket) (`None`: off).
    pub visitor_rate_limit: Option<RateLimit>,
    /// Traffic to origin-queue from visitors without a valid ticket (joins, first page
    /// loads), all clients together (`None`: off).
    pub queue_rate_limit: Option<RateLimit>,
    /// Traffic to origin-queue from visitors with a valid ticket (those already in line:
    /// status polls, leaving), all together (`None`: off). A budget apart, so that a
    /// flood of new visitors cannot take the polls of those in line.
    pub in_line_rate_limit: Option<RateLimit>,
    /// Number of shared-data slots per rate-limit namespace: bounds memory.
    pub rate_limit_slots: u32,
    /// Tokens a worker draws from a shared bucket at once, at most (see
    /// [`crate::lease`]; never more than a quarter of a limit's burst).
    pub rate_limit_lease: u32,
    /// `Retry-After` sent with 403 "not admitted" answers.
    pub denied_retry_after_seconds: u32,
    /// Most bytes of header names and values a request may carry (pseudo-headers
    /// included); more is answered `431 HEADERS_TOO_LARGE`.
    pub max_request_header_bytes: usize,
    /// How the backend ends sessions (`None`: it cannot; the header passes untouched).
    pub session_end: Option<SessionEnd>,
}

impl Config {
    /// Parses and validates; on failure returns every problem found.
    pub fn from_json(bytes: &[u8]) -> Result<Config, Vec<String>> {
        if bytes.is_empty() {
            return Err(vec![
                "configuration is empty: a JSON object is required".into()
            ]);
        }
        let raw: RawConfig = serde_json::from_slice(bytes)
            .map_err(|e| vec![format!("configuration is not valid: {e}")])?;
        let mut problems = Vec::new();
        let keys = KeyRing::from_json_value(&raw.keys)
            .map_err(|e| {
                for p in e.problems {
                    problems.push(format!("keys: {p}"));
                }
            })
            .ok();
        check_events(&raw.events, &mut problems);
        let wire = Wire {
            pass_cookie: raw.pass_cookie.clone(),
            ticket_cookie: raw.ticket_cookie.clone(),
            clock_skew_seconds: raw.clock_skew_seconds,
            max_pass_lifetime_seconds: raw.max_pass_lifetime_seconds,
        };
        problems.extend(wire.problems());
        for (field, name) in [
            ("visitor_header", &raw.visitor_header),
            ("event_header", &raw.event_header),
        ] {
            if !wire::is_cookie_name(name) {
                problems.push(format!(
                    "{field}: {name:?} is not a valid header name (1-64 token characters)"
                ));
            }
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                problems.push(format!("{field}: {name:?} must be lower case"));
            }
            if name.contains('_') {
                problems.push(format!(
                    "{field}: {name:?} must not contain '_' (many servers read it as '-')"
                ));
            }
            if READ_HEADERS.contains(&name.as_str()) || name == wire::WIRE_HEADER {
                problems.push(format!(
                    "{field}: {name:?} is a header the filter reads or sets for itself"
                ));
            }
        }
        if raw.visitor_header == raw.event_header {
            problems.push("visitor_header and event_header must differ".into());
        }
        if !raw.waiting_room_path.starts_with('/') || !raw.waiting_room_path.contains("{event}") {
            problems.push("waiting_room_path: must start with '/' and contain {event}".into());
        }
        check_prefixes("queue_prefixes", &raw.queue_prefixes, &mut problems);
        check_prefixes("bypass_prefixes", &raw.bypass_prefixes, &mut problems);
        check_overlaps(&raw, &mut problems);
        for (field, limit) in [
            ("client_rate_limit", &raw.client_rate_limit),
            ("visitor_rate_limit", &raw.visitor_rate_limit),
            ("queue_rate_limit", &raw.queue_rate_limit),
            ("in_line_rate_limit", &raw.in_line_rate_limit),
        ] {
            if let Some(limit) = limit {
                check_rate_limit(field, limit, &mut problems);
            }
        }
        if raw.rate_limit_slots == 0 || raw.rate_limit_slots > MAX_SLOTS {
            problems.push(format!("rate_limit_slots: between 1 and {MAX_SLOTS}"));
        }
        if raw.rate_limit_lease == 0 || raw.rate_limit_lease > MAX_LEASE {
            problems.push(format!("rate_limit_lease: between 1 and {MAX_LEASE}"));
        }
        if raw.denied_retry_after_seconds == 0 || raw.denied_retry_after_seconds > 3600 {
            problems.push("denied_retry_after_seconds: between 1 and 3600".into());
        }
        let header_bytes = MIN_REQUEST_HEADER_BYTES..=wire::MAX_REQUEST_HEADER_BYTES_LIMIT;
        if !header_bytes.contains(&raw.max_request_header_bytes) {
            problems.push(format!(
                "max_request_header_bytes: between {} and {} (Envoy's own limit)",
                header_bytes.start(),
                header_bytes.end()
            ));
        }
        let session_end = raw.session_end.map(|section| {
            let taken = [
                raw.visitor_header.as_str(),
                raw.event_header.as_str(),
                wire::WIRE_HEADER,
                wire::TICKET_HEADER,
            ];
            section.validate(&raw.pass_cookie, &taken, &mut problems)
        });
        match keys {
            Some(keys) if problems.is_empty() => Ok(Config {
                keys,
                events: raw
                    .events
                    .into_iter()
                    .map(|event| EventConfig {
                        protected_prefixes: event
                            .protected_prefixes
                            .iter()
                            .map(|p| ProtectedPrefix::new(p, event.case_sensitive))
                            .collect(),
                        id: event.id,
                        not_before: event.not_before.unwrap_or(0),
                    })
                    .collect(),
                wire_header: wire.to_header(),
                wire,
                visitor_header: raw.visitor_header,
                event_header: raw.event_header,
                waiting_room_path: raw.waiting_room_path,
                queue_prefixes: raw.queue_prefixes,
                bypass_prefixes: raw.bypass_prefixes,
                client_rate_limit: raw.client_rate_limit,
                visitor_rate_limit: raw.visitor_rate_limit,
                queue_rate_limit: raw.queue_rate_limit,
                in_line_rate_limit: raw.in_line_rate_limit,
                rate_limit_slots: raw.rate_limit_slots,
                rate_limit_lease: raw.rate_limit_lease,
                denied_retry_after_seconds: raw.denied_retry_after_seconds,
                max_request_header_bytes: raw.max_request_header_bytes,
                session_end,
            }),
            _ => Err(problems),
        }
    }

    /// [`Config::from_json`] for a runtime that knows the time (`now`, unix seconds)
    /// when it loads a configuration: also refuses an event's cut later than `now`
    /// beyond the clock-skew leeway, which would refuse every pass, those origin-queue
    /// issues now included (origin-queue never sets a cut in the future).
    pub fn from_json_at(bytes: &[u8], now: u64) -> Result<Config, Vec<String>> {
        let config = Config::from_json(bytes)?;
        let future = config.cuts_in_future(now);
        if future.is_empty() {
            Ok(config)
        } else {
            Err(future)
        }
    }

    /// The events whose cut is later than `now` (unix seconds) beyond the clock-skew
    /// leeway, one line each.
    fn cuts_in_future(&self, now: u64) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e.not_before > now.saturating_add(self.wire.clock_skew_seconds))
            .map(|e| {
                format!(
                    "events: {:?}: not_before {} is {} s in the future: it would refuse every pass, new ones too",
                    e.id,
                    e.not_before,
                    e.not_before - now
                )
            })
            .collect()
    }

    /// The event `id`'s configuration.
    pub fn event(&self, id: &str) -> Option<&EventConfig> {
        self.events.iter().find(|e| e.id == id)
    }

    /// The waiting-room page for an event.
    pub fn waiting_room_for(&self, event: &str) -> String {
        self.waiting_room_path.replace("{event}", event)
    }

    /// The request headers the edge strips: those only it may set (identity, wire) and
    /// the path overrides ([`wire::PATH_OVERRIDE_HEADERS`]). Client-sent copies, in any
    /// spelling, are removed before a request goes on.
    pub fn owned_headers(&self) -> [&str; 9] {
        let [a, b, c, d, e, f] = wire::PATH_OVERRIDE_HEADERS;
        [
            &self.visitor_header,
            &self.event_header,
            wire::WIRE_HEADER,
            a,
            b,
            c,
            d,
            e,
            f,
        ]
    }
}
#[cfg(test)]
pub(crate) mod tests;
