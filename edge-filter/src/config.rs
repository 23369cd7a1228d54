//! The filter's JSON configuration, validated once at configure time.
//!
//! Every problem is reported, one line each, so an operator fixes a broken config in
//! one round trip. See the README's "Edge filter configuration" section for an example.

use serde::Deserialize;
use wr_pass::{validate_event_id, KeyRing};

/// Most events one filter serves.
const MAX_EVENTS: usize = 64;
/// Most path prefixes in all lists together.
const MAX_PREFIXES: usize = 256;
/// Largest accepted clock-skew leeway.
const MAX_CLOCK_SKEW: u64 = 300;
/// Largest number of rate-limit slots (each costs ~100 bytes of shared data per worker set).
const MAX_SLOTS: u32 = 1 << 20;

/// A token bucket: sustained rate and burst size.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second (0.001 – 1,000,000).
    pub requests_per_second: f64,
    /// Requests allowed at once after a quiet period (1 – 1,000,000).
    pub burst: u32,
}

/// One event's protected paths.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventConfig {
    /// Event id, as in origin-queue and in the pass.
    pub id: String,
    /// Path prefixes that need a valid pass for this event.
    pub protected_prefixes: Vec<String>,
}

fn default_pass_cookie() -> String {
    "wr_pass".into()
}
fn default_ticket_cookie() -> String {
    "wr_ticket".into()
}
fn default_visitor_header() -> String {
    "x-wr-visitor".into()
}
fn default_event_header() -> String {
    "x-wr-event".into()
}
fn default_waiting_room_path() -> String {
    "/waiting-room/{event}".into()
}
fn default_queue_prefixes() -> Vec<String> {
    vec!["/v1/".into(), "/waiting-room/".into()]
}
fn default_clock_skew() -> u64 {
    30
}
fn default_denied_retry_after() -> u32 {
    5
}
fn default_slots() -> u32 {
    16_384
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
    events: Vec<EventConfig>,
    #[serde(default = "default_pass_cookie")]
    pass_cookie: String,
    #[serde(default = "default_clock_skew")]
    clock_skew_seconds: u64,
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
    #[serde(default = "default_ticket_cookie")]
    ticket_cookie: String,
    #[serde(default = "default_slots")]
    rate_limit_slots: u32,
    #[serde(default = "default_denied_retry_after")]
    denied_retry_after_seconds: u32,
}

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Keys that verify passes.
    pub keys: KeyRing,
    /// Events and their protected prefixes.
    pub events: Vec<EventConfig>,
    /// Name of the admission cookie.
    pub pass_cookie: String,
    /// Clock-skew leeway, seconds, for pass issue and expiry times.
    pub clock_skew_seconds: u64,
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
    /// Name of origin-queue's ticket cookie (the header `x-wr-ticket` is read too).
    pub ticket_cookie: String,
    /// Number of shared-data slots per rate-limit namespace: bounds memory.
    pub rate_limit_slots: u32,
    /// `Retry-After` sent with 403 "not admitted" answers.
    pub denied_retry_after_seconds: u32,
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
        check_token("pass_cookie", &raw.pass_cookie, &mut problems);
        check_token("ticket_cookie", &raw.ticket_cookie, &mut problems);
        if raw.ticket_cookie == raw.pass_cookie {
            problems.push("ticket_cookie and pass_cookie must differ".into());
        }
        for (field, name) in [
            ("visitor_header", &raw.visitor_header),
            ("event_header", &raw.event_header),
        ] {
            check_token(field, name, &mut problems);
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                problems.push(format!("{field}: {name:?} must be lower case"));
            }
        }
        if raw.visitor_header == raw.event_header {
            problems.push("visitor_header and event_header must differ".into());
        }
        if raw.clock_skew_seconds > MAX_CLOCK_SKEW {
            problems.push(format!("clock_skew_seconds: at most {MAX_CLOCK_SKEW}"));
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
        if raw.denied_retry_after_seconds == 0 || raw.denied_retry_after_seconds > 3600 {
            problems.push("denied_retry_after_seconds: between 1 and 3600".into());
        }
        match keys {
            Some(keys) if problems.is_empty() => Ok(Config {
                keys,
                events: raw.events,
                pass_cookie: raw.pass_cookie,
                clock_skew_seconds: raw.clock_skew_seconds,
                visitor_header: raw.visitor_header,
                event_header: raw.event_header,
                waiting_room_path: raw.waiting_room_path,
                queue_prefixes: raw.queue_prefixes,
                bypass_prefixes: raw.bypass_prefixes,
                client_rate_limit: raw.client_rate_limit,
                visitor_rate_limit: raw.visitor_rate_limit,
                queue_rate_limit: raw.queue_rate_limit,
                in_line_rate_limit: raw.in_line_rate_limit,
                ticket_cookie: raw.ticket_cookie,
                rate_limit_slots: raw.rate_limit_slots,
                denied_retry_after_seconds: raw.denied_retry_after_seconds,
            }),
            _ => Err(problems),
        }
    }

    /// The waiting-room page for an event.
    pub fn waiting_room_for(&self, event: &str) -> String {
        self.waiting_room_path.replace("{event}", event)
    }
}

fn check_events(events: &[EventConfig], problems: &mut Vec<String>) {
    if events.is_empty() {
        problems.push("events: at least one event is required".into());
    }
    if events.len() > MAX_EVENTS {
        problems.push(format!("events: at most {MAX_EVENTS}"));
    }
    for (i, event) in events.iter().enumerate() {
        if let Err(e) = validate_event_id(&event.id) {
            problems.push(format!("events[{i}].id: {:?} {e}", event.id));
        }
        if events[..i].iter().any(|e| e.id == event.id) {
            problems.push(format!("events[{i}].id: {:?} is listed twice", event.id));
        }
        if event.protected_prefixes.is_empty() {
            problems.push(format!(
                "events[{i}].protected_prefixes: at least one prefix is required"
            ));
        }
        check_prefixes(
            &format!("events[{i}].protected_prefixes"),
            &event.protected_prefixes,
            problems,
        );
    }
}

fn check_prefixes(field: &str, prefixes: &[String], problems: &mut Vec<String>) {
    for (i, p) in prefixes.iter().enumerate() {
        let bad_char = p
            .bytes()
            .any(|b| !b.is_ascii_graphic() || matches!(b, b'?' | b'#' | b'%' | b'\\'));
        if !p.starts_with('/') || bad_char || p.len() > 256 {
            problems.push(format!(
                "{field}[{i}]: {p:?} must start with '/', be at most 256 printable characters, without ? # % or \\"
            ));
        } else if !crate::classify::is_normal_path(p.as_bytes()) {
            problems.push(format!(
                "{field}[{i}]: {p:?} is not a normalized path (no //, . or .. segments)"
            ));
        }
    }
}

/// The same prefix in two lists would make classification depend on list order.
fn check_overlaps(raw: &RawConfig, problems: &mut Vec<String>) {
    let mut all: Vec<(&str, String)> = Vec::new();
    let lists = [
        ("queue_prefixes", &raw.queue_prefixes),
        ("bypass_prefixes", &raw.bypass_prefixes),
    ];
    for (field, list) in lists {
        all.extend(list.iter().map(|p| (p.as_str(), field.to_owned())));
    }
    for event in &raw.events {
        let owner = format!("event {:?}", event.id);
        all.extend(
            event
                .protected_prefixes
                .iter()
                .map(|p| (p.as_str(), owner.clone())),
        );
    }
    if all.len() > MAX_PREFIXES {
        problems.push(format!("at most {MAX_PREFIXES} path prefixes in all"));
    }
    for (i, (p, owner)) in all.iter().enumerate() {
        if let Some((_, first)) = all[..i].iter().find(|(q, _)| q == p) {
            problems.push(format!(
                "prefix {p:?} is listed twice ({first} and {owner})"
            ));
        }
    }
}

fn check_token(field: &str, value: &str, problems: &mut Vec<String>) {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&'*+-.^_`|~".contains(&b));
    if !ok {
        problems.push(format!(
            "{field}: {value:?} is not a valid name (1-64 token characters)"
        ));
    }
}

fn check_rate_limit(field: &str, limit: &RateLimit, problems: &mut Vec<String>) {
    let rps = limit.requests_per_second;
    if !(0.001..=1_000_000.0).contains(&rps) {
        problems.push(format!(
            "{field}.requests_per_second: between 0.001 and 1000000"
        ));
    }
    if limit.burst == 0 || limit.burst > 1_000_000 {
        problems.push(format!("{field}.burst: between 1 and 1000000"));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const KEYS: &str =
        r#"{"active":"k1","keys":{"k1":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}}"#;

    pub fn minimal() -> String {
        format!(
            r#"{{"keys":{KEYS},"events":[{{"id":"concert","protected_prefixes":["/reserve"]}}]}}"#
        )
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_json(minimal().as_bytes()).unwrap();
        assert_eq!(c.pass_cookie, "wr_pass");
        assert_eq!(c.visitor_header, "x-wr-visitor");
        assert_eq!(c.waiting_room_for("concert"), "/waiting-room/concert");
        assert_eq!(c.client_rate_limit.unwrap().burst, 100);
        assert_eq!(c.ticket_cookie, "wr_ticket");
        assert_eq!(c.in_line_rate_limit.unwrap().burst, 4_000);
    }

    #[test]
    fn ticket_and_pass_cookies_must_differ() {
        let text = minimal().replacen('{', r#"{"ticket_cookie":"wr_pass","#, 1);
        let problems = Config::from_json(text.as_bytes()).unwrap_err();
        assert_eq!(problems, ["ticket_cookie and pass_cookie must differ"]);
        let text = minimal().replacen(
            '{',
            r#"{"in_line_rate_limit":{"requests_per_second":0,"burst":1},"#,
            1,
        );
        let problems = Config::from_json(text.as_bytes()).unwrap_err();
        assert_eq!(
            problems,
            ["in_line_rate_limit.requests_per_second: between 0.001 and 1000000"]
        );
    }

    #[test]
    fn null_turns_a_limit_off() {
        let text = minimal().replacen('{', r#"{"visitor_rate_limit":null,"#, 1);
        assert_eq!(
            Config::from_json(text.as_bytes())
                .unwrap()
                .visitor_rate_limit,
            None
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let text = r#"{
            "keys": {"active":"nope","keys":{"k1":"c2hvcnQ="}},
            "events": [{"id":"Bad Id","protected_prefixes":["reserve","/a/../b"]},
                       {"id":"ok","protected_prefixes":["/v1/"]}],
            "pass_cookie": "bad cookie",
            "visitor_header": "X-Visitor",
            "clock_skew_seconds": 9999,
            "waiting_room_path": "/wait",
            "client_rate_limit": {"requests_per_second": 0, "burst": 0},
            "rate_limit_slots": 0
        }"#;
        let problems = Config::from_json(text.as_bytes()).unwrap_err();
        let all = problems.join("\n");
        for needle in [
            "keys: key \"k1\": secret is 5 bytes",
            "keys: active key \"nope\"",
            "events[0].id",
            "events[0].protected_prefixes[0]",
            "events[0].protected_prefixes[1]",
            "prefix \"/v1/\" is listed twice",
            "pass_cookie",
            "visitor_header: \"X-Visitor\" must be lower case",
            "clock_skew_seconds",
            "waiting_room_path",
            "client_rate_limit.requests_per_second",
            "client_rate_limit.burst",
            "rate_limit_slots",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn syntax_and_type_errors_are_reported_not_panicked() {
        for text in [
            &b""[..],
            b"{",
            b"[]",
            b"null",
            b"{\"keys\":1}",
            b"\xff\xfe",
            b"{\"events\":[],\"keys\":{},\"x\":1}",
        ] {
            let problems = Config::from_json(text).unwrap_err();
            assert!(!problems.is_empty());
        }
    }
}
