//! One plugin configuration in this VM (a root context): its engine, its counts, and
//! applying each [`Outcome`] through the host.

use std::time::Duration;

use wr_edge_core::config::Config;
use wr_edge_core::decision::Engine;
use wr_edge_core::metrics::{Counter, Tally};
use wr_edge_core::outcome::{HeaderChange, Outcome};
use wr_edge_core::reply::LocalReply;
use wr_edge_core::session_end::{ResponseChange, Session};

use crate::host::{self, request_headers, HostStore};
use crate::reports::Reports;

/// How often each worker hands its counts to the host and sends the session-end
/// reports of the responses since. A request makes no metric call: it adds to its
/// worker's [`Tally`], and the stats lag by this much at most.
pub const TICK: Duration = Duration::from_millis(100);

/// What the host does with the request after its headers (proxy-wasm `Action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum HostAction {
    /// Go on to the next filter.
    Continue = 0,
    /// Stop: the filter sent a local reply.
    Pause = 1,
}

/// The worker's counters: metric ids from the host (by [`Counter::index`]) and the
/// counts not yet handed over.
#[derive(Default)]
pub struct Counts {
    ids: Vec<Option<u32>>,
    tally: Tally,
    /// False if the host refused a tick: then every request hands its counts over.
    batched: bool,
}

impl Counts {
    /// Counts one request's counters.
    pub fn add(&mut self, counters: &[Counter]) {
        self.tally.add(counters);
        if !self.batched {
            self.flush();
        }
    }

    /// Hands the counts so far to the host.
    pub fn flush(&mut self) {
        for (counter, n) in self.tally.drain() {
            if let Some(Some(id)) = self.ids.get(counter.index()) {
                let _ = host::increment_counter(*id, n as i64);
            }
        }
    }
}

/// One per plugin configuration and worker VM: the validated configuration's engine
/// and the worker's counts.
#[derive(Default)]
pub struct EdgeRoot {
    engine: Option<Engine>,
    counts: Counts,
    reports: Reports,
}

impl EdgeRoot {
    /// Reads and validates the plugin configuration; false (the host then refuses the
    /// plugin) with every problem logged if it is not valid.
    pub fn configure(&mut self) -> bool {
        let bytes = host::plugin_configuration();
        let now = host::now_ms().unwrap_or(0) / 1000;
        let config = match Config::from_json_at(&bytes, now) {
            Ok(config) => config,
            Err(problems) => {
                for problem in &problems {
                    log::error!("wr-edge configuration: {problem}");
                }
                log::error!(
                    "wr-edge configuration rejected: {} problem(s)",
                    problems.len()
                );
                return false;
            }
        };
        log::info!(
            "wr-edge configured: {} event(s), signing key ids {:?}",
            config.events.len(),
            config.keys.key_ids().collect::<Vec<_>>()
        );
        let ids = Counter::ALL
            .iter()
            .map(|c| host::define_counter(c.name()).ok())
            .collect();
        // Counts made under the previous configuration go out under its metric ids.
        self.counts.flush();
        self.counts.ids = ids;
        self.engine = Some(Engine::new(config));
        let ticking = host::set_tick_period(TICK);
        if let Err(status) = ticking {
            log::warn!("wr-edge: no tick from the host ({status:?}): counting per request");
        }
        self.counts.batched = ticking.is_ok();
        true
    }

    /// The host's timer: send the reports waiting, hand the counts over.
    pub fn tick(&mut self) {
        if let Some(settings) = self
            .engine
            .as_ref()
            .and_then(|e| e.config().session_end.as_ref())
        {
            self.reports.send(settings, &mut self.counts);
        }
        self.counts.flush();
    }

    /// The answer to a report sent at a tick.
    pub fn http_call_response(&mut self, token: u32) {
        self.reports.answered(token, &mut self.counts);
    }

    /// The root is going away: hand the last counts over (reports not sent yet are
    /// dropped, and counted).
    pub fn done(&mut self) {
        self.reports.drop_pending(&mut self.counts);
        self.counts.flush();
    }

    /// Decides on one request from its headers and applies the outcome; the session
    /// it admitted, for its response.
    pub fn request_headers(&mut self) -> (HostAction, Option<Session>) {
        let Some(engine) = self.engine.as_ref() else {
            // Only reachable if the host ignored a failed configure: fail closed.
            return (reply(&not_configured()), None);
        };
        let headers = request_headers();
        // A property is a costly host call: read only when a per-address limit applies.
        let source = || host::property(&["source", "address"]);
        // Without a clock every pass looks expired: fail closed.
        let now_ms = host::now_ms().unwrap_or(0);
        let outcome = engine.outcome_with_source(headers.pairs(), &source, now_ms, &HostStore);
        match outcome {
            Outcome::Reply {
                status,
                headers,
                body,
                counters,
                ..
            } => {
                self.counts.add(&counters);
                let action = reply(&LocalReply {
                    status,
                    headers,
                    body,
                });
                (action, None)
            }
            Outcome::Forward {
                changes,
                counters,
                session,
                ..
            } => {
                self.counts.add(&counters);
                (apply(&changes), session)
            }
        }
    }

    /// A response's headers: when it carries the session-end header, the core says
    /// what to change, and a report for origin-queue waits for the next tick. One
    /// lookup when it does not.
    pub fn response_headers(&mut self, session: Option<&Session>) -> HostAction {
        let Some(engine) = self.engine.as_ref() else {
            return HostAction::Continue;
        };
        let Some(settings) = engine.config().session_end.as_ref() else {
            return HostAction::Continue;
        };
        if !host::has_response_header(settings.header.as_bytes()) {
            return HostAction::Continue;
        }
        let headers = host::response_headers();
        let now_ms = host::now_ms().unwrap_or(0);
        let outcome = engine.respond(session, headers.pairs(), now_ms, &HostStore);
        self.counts.add(&outcome.counters);
        for change in &outcome.changes {
            let done = match change {
                ResponseChange::Remove { name } => host::remove_response_header(name.as_bytes()),
                ResponseChange::Add { name, value } => {
                    host::add_response_header(name.as_bytes(), value.as_bytes())
                }
            };
            if let Err(status) = done {
                log::error!("wr-edge: the host refused a response header change ({status})");
            }
        }
        if let Some(report) = outcome.report {
            self.reports.queue(report, &mut self.counts);
        }
        HostAction::Continue
    }
}

/// Applies a forwarded request's header changes; a local 503 if the host refuses one.
///
/// A [`HeaderChange::Set`] is made as an add: no header of its name is left by then
/// (see [`HeaderChange::Set`]), and Envoy adds with less work than it replaces (a
/// replace first looks for, and removes, headers of the name).
fn apply(changes: &[HeaderChange]) -> HostAction {
    for change in changes {
        let done = match change {
            HeaderChange::Set { name, value } => {
                host::add_request_header(name.as_bytes(), value.as_bytes())
            }
            HeaderChange::Remove { name } => host::remove_request_header(name.as_bytes()),
        };
        if let Err(status) = done {
            // A request that may still carry a spoofed identity must not go on.
            log::error!("wr-edge: the host refused a header change ({status})");
            return reply(&unavailable());
        }
    }
    HostAction::Continue
}

// A stream whose plugin has no valid configuration, or that the filter cannot serve,
// is answered like on every runtime: fail closed.
pub use wr_edge_core::reply::{not_configured, unavailable};

/// Sends `reply` as the request's local response.
pub fn reply(reply: &LocalReply) -> HostAction {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    if let Err(status) = host::send_local_response(reply.status, &headers, reply.body.as_bytes()) {
        log::error!("wr-edge: the host refused a local reply ({status})");
    }
    HostAction::Pause
}
