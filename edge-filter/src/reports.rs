//! Session-end reports on their way to origin-queue, per worker.
//!
//! A response that ends a session never waits for origin-queue: its report waits here
//! and the root context sends it at its next tick (every [`crate::plugin::TICK`]), with
//! `proxy_http_call` to the configured cluster. A call made from the stream's own
//! context would be cancelled when the stream ends (usually before origin-queue has
//! answered); the root context lives as long as the configuration.
//!
//! Bounded: at most [`MAX_PENDING`] reports wait and [`MAX_IN_FLIGHT`] are on their way
//! per worker; a report beyond that is dropped and counted
//! (`wr_edge_session_end_report_dropped`): the pass is still refused at this edge and
//! its place frees at the session's timeout.

use std::collections::VecDeque;

use wr_edge_core::metrics::Counter;
use wr_edge_core::session_end::{Report, SessionEnd};

use crate::host;
use crate::plugin::Counts;

/// Reports waiting for a tick, per worker, at most.
pub const MAX_PENDING: usize = 1_024;
/// Reports sent and not yet answered, per worker, at most.
pub const MAX_IN_FLIGHT: usize = 256;

/// origin-queue's answer when it freed the session's place.
const FREED: u32 = 200;
/// origin-queue's answer when the session had already ended (a repeated report, or
/// the backend called first): nothing to free, nothing failed.
const ALREADY_ENDED: u32 = 409;

/// One report, kept until it is sent.
struct Pending {
    path: String,
    body: String,
}

/// This worker's reports.
#[derive(Default)]
pub struct Reports {
    pending: VecDeque<Pending>,
    /// Tokens of the calls on their way (a few hundred at most: a list; a hashed set
    /// would ask the host for random bytes).
    in_flight: Vec<u32>,
}

impl Reports {
    /// Keeps `report` for the next tick, or drops it (counted) if too many wait.
    pub fn queue(&mut self, report: Report, counts: &mut Counts) {
        if self.pending.len() >= MAX_PENDING {
            counts.add(&[Counter::SessionEndReportDropped]);
            return;
        }
        self.pending.push_back(Pending {
            path: report.path,
            body: report.body,
        });
    }

    /// Sends what waits, as far as the in-flight bound allows.
    pub fn send(&mut self, settings: &SessionEnd, counts: &mut Counts) {
        while self.in_flight.len() < MAX_IN_FLIGHT {
            let Some(report) = self.pending.pop_front() else {
                return;
            };
            let headers = [
                (":method", "POST"),
                (":path", report.path.as_str()),
                (":authority", settings.report_authority.as_str()),
                ("content-type", "application/json"),
            ];
            match host::dispatch_http_call(
                &settings.report_cluster,
                &headers,
                report.body.as_bytes(),
                settings.report_timeout_ms,
            ) {
                Ok(token) => {
                    self.in_flight.push(token);
                }
                Err(status) => {
                    log::warn!(
                        "wr-edge: a session-end report could not be sent to cluster {:?} ({status})",
                        settings.report_cluster
                    );
                    counts.add(&[Counter::SessionEndReportFailed]);
                }
            }
        }
    }

    /// origin-queue answered the report `token` (or the call failed).
    pub fn answered(&mut self, token: u32, counts: &mut Counts) {
        let Some(at) = self.in_flight.iter().position(|&t| t == token) else {
            return;
        };
        self.in_flight.swap_remove(at);
        match host::http_call_status() {
            Some(FREED | ALREADY_ENDED) => counts.add(&[Counter::SessionEndReported]),
            other => {
                log::warn!("wr-edge: a session-end report failed (status {other:?})");
                counts.add(&[Counter::SessionEndReportFailed]);
            }
        }
    }

    /// The configuration is going away: what waits is dropped, and counted.
    pub fn drop_pending(&mut self, counts: &mut Counts) {
        for _ in self.pending.drain(..) {
            counts.add(&[Counter::SessionEndReportDropped]);
        }
    }
}
