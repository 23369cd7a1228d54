//! Where a visitor stands: the body of join and status answers (see the HTTP API in
//! `docs/origin-queue.md`).

use rand::Rng;
use serde::Serialize;

use crate::eta::{estimate, poll_after_ms, Observed};

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
    /// The estimated wait, while waiting.
    pub eta_seconds: Option<u64>,
    /// How far the estimate is to be trusted (0–1), while waiting.
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
}

impl<'a> Placement<'a> {
    /// In line at 0-based `rank`, with the ETA and when to poll next.
    pub fn waiting(visitor: &'a str, rank: u64, waiting: u64, observed: &Observed) -> Self {
        let position = rank + 1;
        let (eta, confidence) = estimate(position, observed);
        Placement {
            position: Some(position),
            eta_seconds: Some(eta),
            eta_confidence: Some(confidence),
            poll_after_ms: poll_after_ms(eta, rand::rng().random::<f64>(), observed.poll_cap_ms),
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
            eta_confidence: None,
            poll_after_ms: if status == "admitted" { 0 } else { 5_000 },
            paused: false,
            pass: None,
            pass_expires_at: None,
            admitted_at_ms: None,
        }
    }
}
