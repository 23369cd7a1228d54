//! `GET /v1/events/{event}/status`: where a ticket holder stands; once admitted, the
//! pass.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use wr_pass::{Claims, TokenKind};

use super::error::ApiError;
use super::placement::Placement;
use super::tickets::Tickets;
use super::{checked_event, AppResult, Gates, Queue};
use crate::batching::status_batch::Answer;
use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::store::{Claimed, Guard, QueueMode, Standing};
use crate::wait::eta_record::EtaRecord;

/// Where the visitor of the presented ticket stands.
pub async fn status(
    State(queue): State<Arc<Queue>>,
    State(tickets): State<Arc<Tickets>>,
    State(gates): State<Arc<Gates>>,
    State(metrics): State<Arc<Metrics>>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> AppResult {
    checked_event(&event)?;
    let ticket = tickets.required(&headers, &event)?;
    let visitor = ticket.visitor.clone();
    gates.limit_visitor(&visitor)?;
    let Some(Answer {
        standing,
        waiting,
        observed,
        guard,
    }) = queue
        .status_polls
        .status(&event, &visitor)
        .await
        .inspect_err(|_| gates.missed_polls.record(now_ms()))?
    else {
        return Err(ApiError::EventNotFound);
    };
    let body = match standing {
        Standing::Waiting { rank } => Placement::waiting(&visitor, rank, waiting, &observed),
        Standing::InDraw { entrants } => {
            Placement::in_draw(&visitor, entrants, waiting, &observed, now_ms())
        }
        Standing::Expired => Placement::other(&visitor, "expired", waiting).in_mode(observed.mode),
        Standing::Admitted {
            session_end_ms,
            claimed_now,
        } => {
            record_eta_accuracy(&metrics, claimed_now, &ticket);
            let event_now = EventNow {
                waiting,
                mode: observed.mode,
                guard,
            };
            return admitted(
                &tickets,
                &event,
                &visitor,
                session_end_ms,
                claimed_now,
                event_now,
            );
        }
    };
    Ok(body.into_response())
}

/// How the wait promised at join compares with the actual one, measured when this poll
/// claimed the grant: the relative error, and whether the range held it. Actual wait:
/// join to grant (the visitor's polling lag is not the queue's).
fn record_eta_accuracy(metrics: &Metrics, claimed_now: Option<Claimed>, ticket: &Claims) {
    let Some((claimed, promise)) = claimed_now.zip(EtaRecord::from_claims(ticket)) else {
        return;
    };
    if let Some(error) = promise.relative_error(claimed.granted_ms) {
        metrics.record_eta_error(error);
    }
    if let Some(result) = promise.range_result(claimed.granted_ms) {
        metrics.record_eta_range(result);
    }
}

/// What the poll's batch said of the whole event.
struct EventNow {
    /// In line.
    waiting: u64,
    /// The queueing mode.
    mode: QueueMode,
    /// What the event asks of passes now (the cut).
    guard: Guard,
}

/// The answer to an admitted visitor: a pass for the rest of the session, in the body
/// and in the pass cookie.
fn admitted(
    tickets: &Tickets,
    event: &str,
    visitor: &str,
    session_end_ms: u64,
    claimed_now: Option<Claimed>,
    EventNow {
        waiting,
        mode,
        guard,
    }: EventNow,
) -> AppResult {
    let now = now_ms();
    // The pass lives as long as the session, never longer than the edge accepts, and
    // is never issued before the event's cut (a revocation in this very second).
    let ttl = (session_end_ms.saturating_sub(now) / 1000)
        .clamp(1, tickets.wire.max_pass_lifetime_seconds);
    let issued_at = guard.pass_issued_at(now / 1000);
    let claims = Claims::new(event, visitor, issued_at, issued_at + ttl);
    let pass = tickets.mint(TokenKind::Pass, &claims)?;
    let body = Placement {
        pass: Some(pass.clone()),
        pass_expires_at: Some(issued_at + ttl),
        admitted_at_ms: claimed_now.map(|c| c.granted_ms),
        ..Placement::other(visitor, "admitted", waiting).in_mode(mode)
    };
    let mut response = body.into_response();
    tickets.hand_pass(&mut response, &pass, ttl);
    Ok(response)
}
