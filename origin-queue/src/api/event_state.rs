//! `GET /v1/events/{event}`: the public state of an event.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::{AppResult, Queue};

/// The phase, the line's length, the admission rate, the queueing mode and the
/// pre-queue.
pub async fn public_state(State(queue): State<Arc<Queue>>, Path(event): Path<String>) -> AppResult {
    let stats = queue.stats_of(&event).await?;
    Ok(Json(json!({
        "event": event, "state": stats.state,
        "waiting": stats.waiting, "admission_rate": stats.admission_rate,
        "mode": stats.mode,
        "prequeue": {
            "state": stats.prequeue.name(),
            "opens_at": stats.config.prequeue_opens_at,
            "draw_at": stats.config.prequeue_opens_at.map(|_| stats.config.opens_at),
            "entrants": stats.prequeue_entrants,
        },
    }))
    .into_response())
}
