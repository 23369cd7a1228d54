//! The operator's API under `/v1/admin/`: a bearer token compared in constant time,
//! then configure, pause, resume and stats.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::bearer::bearer_token;
use super::error::ApiError;
use super::tickets::Tickets;
use super::{checked_event, no_store, AppResult, Queue};
use crate::clock::now_ms;
use crate::store::EventConfig;

/// The admin API's credentials.
pub struct Admin {
    /// The bearer token; `None` disables the admin API.
    pub token: Option<String>,
}

/// Lets only requests with the admin bearer token through.
pub async fn require_admin(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &admin.token else {
        return ApiError::AdminDisabled.into_response();
    };
    let given = bearer_token(&headers).unwrap_or("");
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for (i, byte) in b.iter().enumerate() {
        diff |= a.get(i).copied().unwrap_or(0) ^ byte;
    }
    diff == 0
}

/// `PUT /v1/admin/events/{event}`: creates or replaces an event.
pub async fn configure_event(
    State(queue): State<Arc<Queue>>,
    State(tickets): State<Arc<Tickets>>,
    Path(event): Path<String>,
    body: Bytes,
) -> AppResult {
    checked_event(&event)?;
    let config: EventConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadJson(format!("Event configuration: {e}")))?;
    let problems = config.problems(tickets.wire.max_pass_lifetime_seconds);
    if !problems.is_empty() {
        return Err(ApiError::BadConfig(problems));
    }
    queue.store.configure(&event, &config, now_ms()).await?;
    tracing::info!(event, ?config, "event configured");
    Ok(Json(json!({"event": event, "config": config})).into_response())
}

/// `POST /v1/admin/events/{event}/pause`.
pub async fn pause(State(queue): State<Arc<Queue>>, Path(event): Path<String>) -> AppResult {
    set_paused(&queue, &event, true).await
}

/// `POST /v1/admin/events/{event}/resume`.
pub async fn resume(State(queue): State<Arc<Queue>>, Path(event): Path<String>) -> AppResult {
    set_paused(&queue, &event, false).await
}

async fn set_paused(queue: &Queue, event: &str, paused: bool) -> AppResult {
    checked_event(event)?;
    if !queue.store.set_paused(event, paused).await? {
        return Err(ApiError::EventNotFound);
    }
    tracing::info!(event, paused, "event pause state changed");
    Ok(Json(json!({"event": event, "paused": paused})).into_response())
}

/// `GET /v1/admin/events/{event}/stats`.
pub async fn stats(State(queue): State<Arc<Queue>>, Path(event): Path<String>) -> AppResult {
    let stats = queue.stats_of(&event).await?;
    Ok(no_store(Json(stats).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"abcdef0123456789", b"abcdef0123456789"));
        assert!(!constant_time_eq(b"abcdef0123456788", b"abcdef0123456789"));
        assert!(!constant_time_eq(b"", b"abcdef0123456789"));
        assert!(!constant_time_eq(b"abcdef0123456789x", b"abcdef0123456789"));
    }
}
