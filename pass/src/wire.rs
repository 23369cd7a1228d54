//! The names and numbers the edge and origin-queue must agree on, defined once.
//!
//! Some are fixed (header names, route prefixes); the rest are operator settings that
//! both sides read under the same names ([`Wire`]): the filter from its JSON
//! configuration, origin-queue from `WR_*` variables or its settings file. When the two
//! disagree (say the pass cookie was renamed on one side only), admission would break
//! silently: the queue hands out a cookie the edge never looks at. So the filter tells
//! origin-queue its settings on every request it forwards there ([`WIRE_HEADER`], a
//! header only the filter sets) and origin-queue refuses, loudly and by name, to serve
//! an edge that disagrees ([`Wire::differences`]).

use serde::{Deserialize, Serialize};

/// Default name of the admission pass cookie, checked at the edge.
pub const PASS_COOKIE: &str = "wr_pass";
/// Default name of the queue ticket cookie, set and read by origin-queue.
pub const TICKET_COOKIE: &str = "wr_ticket";
/// Request header carrying the queue ticket, for clients that keep no cookies.
pub const TICKET_HEADER: &str = "x-wr-ticket";
/// Default request header naming the admitted visitor to the backend (set only by the
/// filter).
pub const VISITOR_HEADER: &str = "x-wr-visitor";
/// Default request header naming the event to the backend (set only by the filter).
pub const EVENT_HEADER: &str = "x-wr-event";
/// Request header in which the filter tells origin-queue its [`Wire`] settings
/// ([`Wire::to_header`]). Client-sent copies are removed by the filter.
pub const WIRE_HEADER: &str = "x-wr-wire";
/// Request headers that some backend frameworks read as the request's path instead of
/// its request line: `X-Original-URL` and `X-Rewrite-URL` (Symfony before 5, Zend
/// Framework, Laminas, IIS URL Rewrite, ASP.NET), `X-Original-URI` (nginx
/// `auth_request` setups, some PHP routers), `X-Forwarded-Uri` and `X-Forwarded-Path`
/// (Traefik's forward auth, apps behind it), `X-Forwarded-Prefix` (Spring's
/// `ForwardedHeaderFilter`, ASP.NET Core, Werkzeug's `ProxyFix`: prepended to the path).
/// A client's copy could make the backend serve a protected page for a request the edge
/// classified by its real path, so the edge removes every spelling of them, on every
/// path, as it removes the identity headers. Nothing in front of the edge sets them.
pub const PATH_OVERRIDE_HEADERS: [&str; 6] = [
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-forwarded-prefix",
];
/// Default of the most bytes of request headers the edge accepts (the edge
/// configuration's `max_request_header_bytes`): names and values of every header,
/// pseudo-headers included (as Envoy counts them). A request with more is answered
/// `431 HEADERS_TOO_LARGE` at the edge, on every runtime, for itself alone. Browsers
/// send well under 8 KiB; a cookie is at most 4 KiB.
pub const MAX_REQUEST_HEADER_BYTES: usize = 32 * 1024;
/// The largest `max_request_header_bytes` an edge may be configured with: Envoy's own
/// default limit (60 KiB), under [`UPSTREAM_MAX_HEADER_LIST_BYTES`] with room for what
/// Envoy adds.
pub const MAX_REQUEST_HEADER_BYTES_LIMIT: usize = 60 * 1024;
/// Most bytes of an HTTP/2 header list the services behind the edge accept (origin-queue,
/// the demo backend), each header counted as name + value + 32 bytes; over HTTP/1.1 they
/// read a head of up to about 400 KiB (hyper's default). It is more than any request a
/// proxy in front forwards (Envoy refuses more than 60 KiB of headers or 100 headers by
/// default, the edge more than [`MAX_REQUEST_HEADER_BYTES_LIMIT`] whatever its
/// configuration), so what the edge forwards
/// is never refused by the connection, where one request's headers would fail every
/// request sharing it.
pub const UPSTREAM_MAX_HEADER_LIST_BYTES: usize = 128 * 1024;
/// Most headers of one HTTP/1.1 request the services behind the edge accept: Envoy
/// forwards up to 100 of a client's and adds its own (hyper's default is 100).
pub const UPSTREAM_MAX_HEADERS: usize = 200;
/// The response code details of every local reply of the edge in Envoy
/// (`%RESPONSE_CODE_DETAILS%`, CEL's `response.code_details`): the shipped Envoy
/// configurations' reply mappers tell the filter's answers, which carry their own error
/// codes, from Envoy's own refusals by it.
pub const EDGE_REPLY_DETAILS: &str = "wr_edge";
/// Default clock-skew leeway, seconds, for the issue and expiry times of tokens.
pub const CLOCK_SKEW_SECONDS: u64 = 30;
/// Largest accepted clock-skew leeway, seconds.
pub const MAX_CLOCK_SKEW_SECONDS: u64 = 300;
/// Default longest pass lifetime (expiry − issue time), seconds: a day.
pub const MAX_PASS_LIFETIME_SECONDS: u64 = 86_400;
/// Largest configurable pass lifetime bound, seconds: a week.
pub const MAX_PASS_LIFETIME_LIMIT: u64 = 604_800;
/// Prefix of origin-queue's JSON API.
pub const API_PREFIX: &str = "/v1/";
/// Prefix of the public, per-event part of the API (join, status, leave, state).
pub const EVENTS_PREFIX: &str = "/v1/events/";
/// Prefix of the admin API: never routed through the public edge.
pub const ADMIN_PREFIX: &str = "/v1/admin/";
/// Prefix of the waiting-room page.
pub const WAITING_ROOM_PREFIX: &str = "/waiting-room/";
/// The waiting-room page of an event (`{event}` stands for the event id).
pub const WAITING_ROOM_PATH: &str = "/waiting-room/{event}";

/// The request header carrying a solved proof-of-work challenge with a join
/// (`<challenge>:<nonce>`, see [`crate::pow`]).
pub const POW_HEADER: &str = "x-wr-pow";

/// The query by which the edge sends a visitor whose pass was revoked (issued before
/// the event's cut) to the event's page.
pub const PASS_REVOKED_QUERY: &str = "pass=revoked";

/// Default response header by which the backend ends the visitor's session: the edge
/// removes it from the response, expires the pass cookie, refuses the pass from then on
/// and tells origin-queue, which frees the session's place.
pub const SESSION_END_HEADER: &str = "x-wr-session-end";
/// The value of the session-end header that ends the session (after trimming spaces);
/// any other value is removed and ignored.
pub const SESSION_END_VALUE: &str = "1";
/// The last segment of an event's session-end route: `POST /v1/events/<event>/session-end`
/// with [`SessionEndReport`] as its body.
pub const SESSION_END_ROUTE: &str = "session-end";
/// The query the edge adds to the waiting-room page when it refuses the pass of an
/// ended session, so that the page says so instead of joining the line again.
pub const SESSION_ENDED_QUERY: &str = "session=ended";
/// The attributes of the pass and ticket cookies after their value (origin-queue adds
/// `; Secure` when told to): the edge expires the pass with the same ones.
pub const COOKIE_ATTRIBUTES: &str = "Path=/; HttpOnly; SameSite=Lax";

/// The path of `event`'s session-end route.
pub fn session_end_path(event: &str) -> String {
    format!("{EVENTS_PREFIX}{event}/{SESSION_END_ROUTE}")
}

/// The body of a session-end report: the pass of the session itself, which is what
/// authenticates the report (only its holders, the visitor, the edge and the backend,
/// have it, and it names its event and visitor under the ring's signature).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionEndReport {
    /// The pass (`wr_pass` cookie value).
    pub pass: String,
}

/// The settings both sides read and must agree on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wire {
    /// Name of the admission pass cookie.
    pub pass_cookie: String,
    /// Name of the queue ticket cookie.
    pub ticket_cookie: String,
    /// Clock-skew leeway for token times, seconds.
    pub clock_skew_seconds: u64,
    /// Longest pass lifetime (expiry − issue time): the edge refuses longer passes and
    /// origin-queue never mints them.
    pub max_pass_lifetime_seconds: u64,
}

impl Default for Wire {
    fn default() -> Self {
        Wire {
            pass_cookie: PASS_COOKIE.into(),
            ticket_cookie: TICKET_COOKIE.into(),
            clock_skew_seconds: CLOCK_SKEW_SECONDS,
            max_pass_lifetime_seconds: MAX_PASS_LIFETIME_SECONDS,
        }
    }
}

/// The field names, in the order [`Wire::to_header`] writes them.
const FIELDS: [&str; 4] = [
    "pass_cookie",
    "ticket_cookie",
    "clock_skew_seconds",
    "max_pass_lifetime_seconds",
];

impl Wire {
    /// Every problem with these settings, one line each (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (field, name) in [
            ("pass_cookie", &self.pass_cookie),
            ("ticket_cookie", &self.ticket_cookie),
        ] {
            if !is_cookie_name(name) {
                problems.push(format!(
                    "{field}: {name:?} is not a valid cookie name (1-64 token characters)"
                ));
            }
        }
        if self.pass_cookie == self.ticket_cookie {
            problems.push("ticket_cookie and pass_cookie must differ".into());
        }
        if self.clock_skew_seconds > MAX_CLOCK_SKEW_SECONDS {
            problems.push(format!(
                "clock_skew_seconds: at most {MAX_CLOCK_SKEW_SECONDS}"
            ));
        }
        if !(1..=MAX_PASS_LIFETIME_LIMIT).contains(&self.max_pass_lifetime_seconds) {
            problems.push(format!(
                "max_pass_lifetime_seconds: between 1 and {MAX_PASS_LIFETIME_LIMIT}"
            ));
        }
        problems
    }

    fn values(&self) -> [String; 4] {
        [
            self.pass_cookie.clone(),
            self.ticket_cookie.clone(),
            self.clock_skew_seconds.to_string(),
            self.max_pass_lifetime_seconds.to_string(),
        ]
    }

    /// The settings as the value of [`WIRE_HEADER`]:
    /// `pass_cookie=wr_pass;ticket_cookie=wr_ticket;clock_skew_seconds=30;…`.
    /// Valid settings hold only token characters, so the text is a valid header value.
    pub fn to_header(&self) -> String {
        FIELDS
            .iter()
            .zip(self.values())
            .map(|(field, value)| format!("{field}={value}"))
            .collect::<Vec<_>>()
            .join(";")
    }

    /// How the settings in `header` (another side's [`Wire::to_header`]) differ from
    /// these: one line per differing or missing field, naming both values. Fields this
    /// build does not know are ignored, so a newer edge can talk to an older queue
    /// during an upgrade. Empty when they agree.
    pub fn differences(&self, header: &[u8]) -> Vec<String> {
        if header == self.to_header().as_bytes() {
            return Vec::new();
        }
        let text = String::from_utf8_lossy(header);
        let theirs: Vec<(&str, &str)> = text
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .collect();
        let mut differences = Vec::new();
        for (field, ours) in FIELDS.iter().zip(self.values()) {
            match theirs.iter().find(|(name, _)| name == field) {
                Some((_, value)) if *value == ours => {}
                Some((_, value)) => {
                    differences.push(format!("{field}: edge {value:?}, origin-queue {ours:?}"))
                }
                None => differences.push(format!("{field}: not sent by the edge")),
            }
        }
        differences
    }
}

/// A cookie name: 1–64 HTTP token characters.
pub fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_agree_with_themselves() {
        let wire = Wire::default();
        assert!(wire.problems().is_empty());
        assert_eq!(
            wire.to_header(),
            "pass_cookie=wr_pass;ticket_cookie=wr_ticket;clock_skew_seconds=30;max_pass_lifetime_seconds=86400"
        );
        assert!(wire.differences(wire.to_header().as_bytes()).is_empty());
    }

    #[test]
    fn each_difference_is_named_with_both_values() {
        let edge = Wire {
            pass_cookie: "shop_pass".into(),
            max_pass_lifetime_seconds: 3600,
            ..Wire::default()
        };
        let queue = Wire::default();
        assert_eq!(
            queue.differences(edge.to_header().as_bytes()),
            [
                "pass_cookie: edge \"shop_pass\", origin-queue \"wr_pass\"",
                "max_pass_lifetime_seconds: edge \"3600\", origin-queue \"86400\""
            ]
        );
    }

    #[test]
    fn unreadable_headers_differ_and_unknown_fields_do_not() {
        let queue = Wire::default();
        assert_eq!(queue.differences(b"\xff").len(), 4);
        let newer = "ticket_cookie=wr_ticket;pass_cookie=wr_pass;clock_skew_seconds=30;max_pass_lifetime_seconds=86400;later=1";
        assert!(queue.differences(newer.as_bytes()).is_empty());
    }

    #[test]
    fn bad_settings_are_each_reported() {
        let wire = Wire {
            pass_cookie: "a b".into(),
            ticket_cookie: "a b".into(),
            clock_skew_seconds: 301,
            max_pass_lifetime_seconds: 0,
        };
        assert_eq!(wire.problems().len(), 5, "{:?}", wire.problems());
    }
}
