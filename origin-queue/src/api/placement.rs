//! Where a visitor stands: the body of join and status answers (see the HTTP API in
//! `docs/origin-queue.md`).

use rand::Rng;
use serde::Serialize;

use crate::eta::{estimate, Estimate, Observed};
use crate::poll_advice::poll_after_ms;

/// The body of join and status answers. Serialized straight from this struct, one
/// allocation for the text.
#[derive(Serialize)]
pub struct Placement<'a> {
    /// The visitor id.
    pub visitor: &'a str,
    /// `waiting`, `admitted`, `expired` or `closed`.
    pub status: &'static str,
    /// 1-based place in line, while waiting.
    pub position: Option<u64>,
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

impl<'a> Placement<'a> {
    /// In line at 0-based `rank`, with the ETA and when to poll next.
    pub fn waiting(visitor: &'a str, rank: u64, waiting: u64, observed: &Observed) -> Self {
        let position = rank + 1;
        let e = estimate(position, observed);
        let secs = |ms: u64| (ms as f64 / 100.0).round() / 10.0;
        Placement {
            position: Some(position),
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
            ..Placement::other(visitor, "waiting", waiting)
        }
    }

    /// Not in line: `admitted`, `expired` or `closed`.
    pub fn other(visitor: &'a str, status: &'static str, waiting: u64) -> Self {
        Placement {
            visitor,
            status,
            position: None,
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
