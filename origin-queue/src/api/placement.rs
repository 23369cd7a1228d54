//! Where a visitor stands: the body of join and status answers (see the HTTP API in
//! `docs/origin-queue.md`).

use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use serde::Serialize;

use super::no_store;
use crate::telemetry::Outcome;

use crate::event::Observed;
use crate::store::QueueMode;
use crate::wait::eta::{estimate, Estimate};
use crate::wait::poll_advice::poll_after_ms;
use crate::wait::unknown_place::estimate_unknown_place;

/// The body of join and status answers. Serialized straight from this struct, one
/// allocation for the text.
#[derive(Serialize)]
pub struct Placement<'a> {
    /// The visitor id.
    pub visitor: &'a str,
    /// `waiting`, `admitted`, `expired` or `closed`.
    pub status: &'static str,
    /// The event's queueing mode: `fifo`, `random`, `passthrough` or `reject`.
    pub mode: &'static str,
    /// 1-based place in line, while waiting and the place is known (not in a draw not
    /// run yet, not in random mode).
    pub position: Option<u64>,
    /// Present (true) while the visitor's place is to be drawn at the opening.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub in_draw: bool,
    /// When the draw runs (Unix seconds), while in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draw_at: Option<u64>,
    /// Entrants in the draw so far, while in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrants: Option<u64>,
    /// In line, for the whole event.
    pub waiting: u64,
    /// The estimated wait in whole seconds (rounded up), while waiting.
    pub eta_seconds: Option<u64>,
    /// The same estimate in milliseconds (short waits are not rounded to a second).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_ms: Option<u64>,
    /// The range that should hold the actual wait nine times in ten, seconds (one
    /// decimal); the high end is `null` while admission is paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_range_seconds: Option<(f64, Option<f64>)>,
    /// The estimator's probability that the actual wait is within ±20 % of
    /// `eta_seconds`, while waiting.
    pub eta_confidence: Option<f64>,
    /// When to poll next.
    pub poll_after_ms: u64,
    /// Present (true) only while the operator has paused admission.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// The admission pass, once admitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    /// When the pass expires (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_expires_at: Option<u64>,
    /// When admission was granted, on the poll that claimed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admitted_at_ms: Option<u64>,
    /// The estimate behind the ETA fields (not sent as such).
    #[serde(skip)]
    pub estimate: Option<Estimate>,
}

impl IntoResponse for Placement<'_> {
    /// The JSON body, not to be cached; the visitor's state is the request's outcome.
    fn into_response(self) -> Response {
        let outcome = Outcome(self.status);
        let mut response = no_store(Json(self).into_response());
        response.extensions_mut().insert(outcome);
        response
    }
}

impl<'a> Placement<'a> {
    /// In line at 0-based `rank`, with the ETA and when to poll next. In random mode
    /// the rank means nothing (each admission draws among all waiting): no position,
    /// and the wait of an unknown place among those waiting.
    pub fn waiting(visitor: &'a str, rank: u64, waiting: u64, observed: &Observed) -> Self {
        if observed.mode == QueueMode::Random {
            let e = estimate_unknown_place(waiting, observed);
            return Placement::estimated(visitor, e, waiting, observed);
        }
        let position = rank + 1;
        Placement {
            position: Some(position),
            ..Placement::estimated(visitor, estimate(position, observed), waiting, observed)
        }
    }

    /// In the opening draw among `entrants`, not run yet: no position, the wait of an
    /// unknown place among the entrants, and when the draw runs.
    pub fn in_draw(
        visitor: &'a str,
        entrants: u64,
        waiting: u64,
        observed: &Observed,
        now_ms: u64,
    ) -> Self {
        let e = estimate_unknown_place(entrants, observed);
        let draw_at_ms = now_ms + (observed.opens_in_secs * 1000.0) as u64;
        Placement {
            in_draw: true,
            draw_at: Some(draw_at_ms.div_ceil(1000)),
            entrants: Some(entrants),
            ..Placement::estimated(visitor, e, waiting, observed)
        }
    }

    /// Waiting with the estimate `e` (no position).
    fn estimated(visitor: &'a str, e: Estimate, waiting: u64, observed: &Observed) -> Self {
        let secs = |ms: u64| (ms as f64 / 100.0).round() / 10.0;
        Placement {
            eta_seconds: Some(e.eta_secs()),
            eta_ms: Some(e.eta_ms),
            eta_range_seconds: Some((secs(e.low_ms), e.high_ms.map(secs))),
            eta_confidence: Some(e.confidence),
            poll_after_ms: poll_after_ms(
                e.eta_secs(),
                rand::rng().random::<f64>(),
                observed.poll_cap_ms,
            ),
            estimate: Some(e),
            paused: observed.paused,
            ..Placement::other(visitor, "waiting", waiting).in_mode(observed.mode)
        }
    }

    /// The same, for an event in `mode`.
    pub fn in_mode(self, mode: QueueMode) -> Self {
        Placement {
            mode: mode.name(),
            ..self
        }
    }

    /// Not in line: `admitted`, `expired` or `closed` (mode `fifo` until
    /// [`Placement::in_mode`]).
    pub fn other(visitor: &'a str, status: &'static str, waiting: u64) -> Self {
        Placement {
            visitor,
            status,
            mode: QueueMode::Fifo.name(),
            position: None,
            in_draw: false,
            draw_at: None,
            entrants: None,
            waiting,
            eta_seconds: None,
            eta_ms: None,
            eta_range_seconds: None,
            eta_confidence: None,
            poll_after_ms: if status == "admitted" { 0 } else { 5_000 },
            paused: false,
            pass: None,
            pass_expires_at: None,
            admitted_at_ms: None,
            estimate: None,
        }
    }
}
