//! `POST /v1/events/{event}/session-end`: the backend is done with a visitor, and their
//! place frees now instead of at the session's timeout.
//!
//! The body is [`SessionEndReport`]: the visitor's pass itself, which is what
//! authenticates the call (only the visitor, the edge and the backend hold it, and it
//! names its event and visitor under the ring's signature). The edge sends it after a
//! response with the session-end header; a backend may call it directly with the
//! `wr_pass` cookie it received. 200 when the place was freed; 409 `SESSION_NOT_ACTIVE`
//! when there was nothing to free (a repeated report: each session is ended and
//! counted once); 403 `PASS_*` for a pass that is not valid for this event
//! (`PASS_REVOKED`: issued before the event's cut).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use wr_pass::wire::SessionEndReport;

use super::error::ApiError;
use super::tickets::Tickets;
use super::{checked_event, no_store, AppResult, Gates, Queue};
use crate::metrics::EndCause;
use crate::metrics::Metrics;
use crate::store::SessionEnd;
use wr_pass::Rejection;

/// Ends the session of the pass in the body.
pub async fn end_session(
    State(queue): State<Arc<Queue>>,
    State(tickets): State<Arc<Tickets>>,
    State(gates): State<Arc<Gates>>,
    State(metrics): State<Arc<Metrics>>,
    Path(event): Path<String>,
    body: Bytes,
) -> AppResult {
    checked_event(&event)?;
    let report: SessionEndReport = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadJson(format!("a session-end report: {e}")))?;
    let claims = tickets.pass(&report.pass, &event)?;
    gates.limit_visitor(&claims.visitor)?;
    let issued_ms = claims.issued_at.saturating_mul(1000);
    match queue
        .store
        .end_session(&event, &claims.visitor, issued_ms)
        .await?
    {
        SessionEnd::Ended => {}
        SessionEnd::NotActive => return Err(ApiError::SessionNotActive),
        SessionEnd::Revoked => return Err(ApiError::PassRefused(Rejection::Revoked)),
    }
    metrics.record_session_ended(&event, EndCause::Backend);
    tracing::info!(event, cause = "backend", "session ended");
    let body = json!({"visitor": claims.visitor, "ended": true});
    Ok(no_store(Json(body).into_response()))
}
