//! The backend ends a session: what the edge does with a protected response that carries
//! the session-end header ([`wire::SESSION_END_HEADER`] by default).
//!
//! For a response to a request admitted with a valid pass, the edge:
//!
//! 1. removes the header (a visitor never sees it), and expires the pass cookie with the
//!    attributes origin-queue set it with ([`wire::COOKIE_ATTRIBUTES`]);
//! 2. remembers the end in its store ([`crate::ended`]), so that the pass is refused from
//!    then on, on every worker of this edge;
//! 3. hands the runtime a [`Report`] for origin-queue, which the runtime sends after the
//!    response (never before it, never holding it up), so that the session's place frees
//!    at once. The report carries the pass itself: that is what authenticates it.
//!
//! The header on any other response (a bypass path, a request without a valid pass, a
//! request to origin-queue) is removed and ignored; so is a value other than
//! [`wire::SESSION_END_VALUE`]. A client cannot end anything by sending the header in a
//! request: only responses are read.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use wr_pass::wire::{self, SessionEndReport};
use wr_pass::{TokenKind, Validity};

use crate::decision::Engine;
use crate::metrics::{Counter, Counters};
use crate::rate_limit::SharedStore;

/// Shortest and longest wait for origin-queue's answer to a report, milliseconds.
const REPORT_TIMEOUT_MS: std::ops::RangeInclusive<u32> = 100..=30_000;

fn default_header() -> String {
    wire::SESSION_END_HEADER.into()
}
fn default_report_cluster() -> String {
    "origin_queue".into()
}
fn default_report_timeout_ms() -> u32 {
    2_000
}

/// The `session_end` section as written (absent: these defaults; `null`: off).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSessionEnd {
    #[serde(default = "default_header")]
    header: String,
    #[serde(default = "default_report_cluster")]
    report_cluster: String,
    #[serde(default)]
    report_authority: Option<String>,
    #[serde(default = "default_report_timeout_ms")]
    report_timeout_ms: u32,
    #[serde(default)]
    cookie_secure: bool,
}

impl Default for RawSessionEnd {
    fn default() -> Self {
        RawSessionEnd {
            header: default_header(),
            report_cluster: default_report_cluster(),
            report_authority: None,
            report_timeout_ms: default_report_timeout_ms(),
            cookie_secure: false,
        }
    }
}

/// The default section: on, with the default header.
pub(crate) fn default_section() -> Option<RawSessionEnd> {
    Some(RawSessionEnd::default())
}

/// How the backend ends sessions, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEnd {
    /// The response header that ends the session (lower case).
    pub header: String,
    /// Envoy only: the cluster that reaches origin-queue, for reports.
    pub report_cluster: String,
    /// The `:authority` of reports (default: the cluster name).
    pub report_authority: String,
    /// How long a report waits for origin-queue's answer, milliseconds.
    pub report_timeout_ms: u32,
    /// The `Set-Cookie` that expires the pass cookie.
    pub expire_pass_cookie: String,
}

impl RawSessionEnd {
    /// The validated section; problems are added to `problems` (every one of them).
    /// `taken` are the header names the edge already owns.
    pub(crate) fn validate(
        self,
        pass_cookie: &str,
        taken: &[&str],
        problems: &mut Vec<String>,
    ) -> SessionEnd {
        let header = &self.header;
        if !wire::is_cookie_name(header) || header.bytes().any(|b| b.is_ascii_uppercase()) {
            problems.push(format!(
                "session_end.header: {header:?} must be a lower-case header name (1-64 token characters)"
            ));
        }
        if taken.contains(&header.as_str()) || is_framing_header(header) {
            problems.push(format!(
                "session_end.header: {header:?} is a header the edge or HTTP itself uses"
            ));
        }
        if !is_host_text(&self.report_cluster) {
            problems.push(
                "session_end.report_cluster: 1-128 printable characters without spaces".into(),
            );
        }
        let authority = self
            .report_authority
            .unwrap_or_else(|| self.report_cluster.clone());
        if !is_host_text(&authority) {
            problems.push(
                "session_end.report_authority: 1-128 printable characters without spaces".into(),
            );
        }
        if !REPORT_TIMEOUT_MS.contains(&self.report_timeout_ms) {
            problems.push(format!(
                "session_end.report_timeout_ms: between {} and {}",
                REPORT_TIMEOUT_MS.start(),
                REPORT_TIMEOUT_MS.end()
            ));
        }
        let secure = if self.cookie_secure { "; Secure" } else { "" };
        SessionEnd {
            expire_pass_cookie: format!(
                "{pass_cookie}=; {}; Max-Age=0{secure}",
                wire::COOKIE_ATTRIBUTES
            ),
            header: self.header,
            report_cluster: self.report_cluster,
            report_authority: authority,
            report_timeout_ms: self.report_timeout_ms,
        }
    }
}

fn is_host_text(text: &str) -> bool {
    (1..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic())
}

fn is_framing_header(name: &str) -> bool {
    name.starts_with(':')
        || [
            "set-cookie",
            "cookie",
            "content-length",
            "content-type",
            "transfer-encoding",
            "connection",
            "location",
            "host",
        ]
        .contains(&name)
}

/// The session of an admitted request, carried from its request to its response: the
/// event and the pass that admitted it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The event id.
    pub event: String,
    /// The pass, as the request carried it.
    pub pass: String,
}

/// What origin-queue must hear: `POST` `path` with `body` (JSON), sent by the runtime
/// after the response, at most `timeout_ms` (Envoy: to `cluster` as `authority`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report<'c> {
    /// The route: `/v1/events/<event>/session-end`.
    pub path: String,
    /// `{"pass": "<the pass>"}`.
    pub body: String,
    /// Envoy's cluster for origin-queue.
    pub cluster: &'c str,
    /// The `:authority` to send.
    pub authority: &'c str,
    /// How long to wait for the answer.
    pub timeout_ms: u32,
}

/// A change to the response before it goes to the visitor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ResponseChange<'c> {
    /// Remove every header of this (lower-case) name.
    Remove {
        /// Header name.
        name: Cow<'c, str>,
    },
    /// Add a header (another `Set-Cookie` beside the backend's own).
    Add {
        /// Header name.
        name: Cow<'c, str>,
        /// Header value.
        value: Cow<'c, str>,
    },
}

/// What a runtime does with a response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResponseOutcome<'c> {
    /// Header changes, in order.
    pub changes: Vec<ResponseChange<'c>>,
    /// The report to send to origin-queue after the response, if the session ended.
    pub report: Option<Report<'c>>,
    /// Counters to increment by one.
    pub counters: Counters,
}

impl ResponseOutcome<'_> {
    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// How a session-end header was read.
enum Ending {
    /// No such header: nothing to do.
    Absent,
    /// Present, but not [`wire::SESSION_END_VALUE`] (every copy must say it).
    Other,
    /// The session ends.
    Ends,
}

fn ending<'h>(name: &str, headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>) -> Ending {
    let mut found = Ending::Absent;
    for (n, value) in headers {
        if !n.eq_ignore_ascii_case(name.as_bytes()) {
            continue;
        }
        if value.trim_ascii() != wire::SESSION_END_VALUE.as_bytes() {
            return Ending::Other;
        }
        found = Ending::Ends;
    }
    found
}

impl Engine {
    /// Decides what happens to a response: `session` is what the request's outcome
    /// carried (`None`: the request was not admitted with a pass), `headers` the
    /// response's headers, `now_ms` unix milliseconds. Without a session-end header the
    /// outcome is empty.
    pub fn respond<'h>(
        &self,
        session: Option<&Session>,
        headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>,
        now_ms: u64,
        store: &dyn SharedStore,
    ) -> ResponseOutcome<'_> {
        let Some(settings) = self.config().session_end.as_ref() else {
            return ResponseOutcome::default();
        };
        let found = ending(&settings.header, headers);
        if matches!(found, Ending::Absent) {
            return ResponseOutcome::default();
        }
        let mut outcome = ResponseOutcome {
            changes: vec![ResponseChange::Remove {
                name: Cow::Borrowed(&settings.header),
            }],
            ..ResponseOutcome::default()
        };
        let session = match (found, session) {
            (Ending::Ends, Some(session)) => session,
            _ => {
                outcome.counters.push(Counter::SessionEndIgnored);
                return outcome;
            }
        };
        // The session is what the request's outcome carried; its pass is verified again
        // (one HMAC, only for a response that carries the header) so that a runtime may
        // hand it back through JSON without being trusted with it.
        let now = now_ms / 1000;
        let wire = &self.config().wire;
        let validity = Validity::at(now, wire.clock_skew_seconds);
        let claims = match self.config().keys.verify(
            TokenKind::Pass,
            session.pass.as_bytes(),
            validity,
            Some(&session.event),
        ) {
            Ok(claims) => claims,
            Err(_) => {
                outcome.counters.push(Counter::SessionEndIgnored);
                return outcome;
            }
        };
        let until = claims.expires_at.saturating_add(wire.clock_skew_seconds);
        let ended = self
            .ended()
            .record(store, &claims.event, &claims.visitor, now, until);
        match ended {
            Ok(recorded) if recorded.forgotten > 0 => {
                outcome.counters.push(Counter::SessionEndForgotten)
            }
            Ok(_) => {}
            // The pass is not remembered here, but the cookie still goes and
            // origin-queue still hears: the session ends everywhere that matters.
            Err(_) => outcome.counters.push(Counter::SessionEndNotRemembered),
        }
        outcome.counters.push(Counter::SessionEnded);
        outcome.changes.push(ResponseChange::Add {
            name: Cow::Borrowed("set-cookie"),
            value: Cow::Borrowed(&settings.expire_pass_cookie),
        });
        let body = SessionEndReport {
            pass: session.pass.clone(),
        };
        outcome.report = Some(Report {
            path: wire::session_end_path(&claims.event),
            body: serde_json::to_string(&body).unwrap_or_default(),
            cluster: &settings.report_cluster,
            authority: &settings.report_authority,
            timeout_ms: settings.report_timeout_ms,
        });
        outcome
    }

    /// [`Engine::respond`] from a JSON session (`null` or absent: none), for hosts that
    /// are not Rust; a session that is not such JSON counts as none.
    pub fn respond_json<'h>(
        &self,
        session_json: &str,
        headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>,
        now_ms: u64,
        store: &dyn SharedStore,
    ) -> ResponseOutcome<'_> {
        let session = serde_json::from_str::<Option<Session>>(session_json)
            .ok()
            .flatten();
        self.respond(session.as_ref(), headers, now_ms, store)
    }
}

#[cfg(test)]
mod tests;
