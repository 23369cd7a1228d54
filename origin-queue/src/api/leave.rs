//! `POST /v1/events/{event}/leave`: gives up the place (or the admission) of the
//! presented ticket.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::idempotent::idempotent;
use super::tickets::Tickets;
use super::{checked_event, no_store, AppResult, Gates, Queue};
use crate::metrics::EndCause;
use crate::metrics::Metrics;

/// Leaves the line (under the request's `Idempotency-Key`, if any).
pub async fn leave(
    State(queue): State<Arc<Queue>>,
    State(tickets): State<Arc<Tickets>>,
    State(gates): State<Arc<Gates>>,
    State(metrics): State<Arc<Metrics>>,
    Path(event): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult {
    let cookie = &tickets.wire.ticket_cookie;
    idempotent(
        &queue.store,
        cookie,
        &event,
        &headers,
        "leave",
        &body,
        || async {
            checked_event(&event)?;
            let visitor = tickets.required(&headers, &event)?.visitor;
            gates.limit_visitor(&visitor)?;
            let left = queue.store.leave(&event, &visitor).await?;
            if left.ended_session {
                metrics.record_session_ended(&event, EndCause::Left);
            }
            Ok(no_store(
                Json(json!({"visitor": visitor, "left": left.held})).into_response(),
            ))
        },
    )
    .await
}
