//! `GET /v1/events/{event}`: the public state of an event.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::{AppResult, Queue};

/// The phase, the line's length and the admission rate.
pub async fn public_state(State(queue): State<Arc<Queue>>, Path(event): Path<String>) -> AppResult {
    let stats = queue.stats_of(&event).await?;
    Ok(Json(json!({
        "event": event, "state": stats.state,
        "waiting": stats.waiting, "admission_rate": stats.admission_rate,
    }))
    .into_response())
}
