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
use crate::store::{AfterRevoke, EventConfig, Revoked};
use serde::Deserialize;

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

/// The body of a revocation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// The cut, unix seconds: every pass issued before it is revoked. Absent: now (every
    /// pass issued so far).
    #[serde(default)]
    before: Option<u64>,
    /// What becomes of the visitors admitted before the cut.
    admitted: AfterRevoke,
}

/// `POST /v1/admin/events/{event}/revoke` `{"before"?: unix s, "admitted": "requeue" |
/// "bar"}`: revokes every pass of the event issued before the cut. Answers the cut,
/// what it ended, and the edge configuration's part that carries it (`not_before` of
/// the event), to push to every edge.
pub async fn revoke(
    State(queue): State<Arc<Queue>>,
    State(tickets): State<Arc<Tickets>>,
    Path(event): Path<String>,
    body: Bytes,
) -> AppResult {
    checked_event(&event)?;
    let revocation: Revocation = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadJson(format!("a revocation: {e}")))?;
    let now = now_ms();
    let cut = checked_cut(
        revocation.before,
        now / 1000,
        tickets.wire.max_pass_lifetime_seconds,
    )?;
    // The bar lasts as long as a ticket of the revoked can.
    let bar_secs = tickets.ticket_ttl_secs;
    let (sessions, grants) = match queue
        .store
        .revoke(&event, cut, revocation.admitted, bar_secs, now)
        .await?
    {
        Revoked::Done { sessions, grants } => (sessions, grants),
        Revoked::LaterInForce(in_force) => {
            return Err(ApiError::BadRevocation(format!(
                "before: a later cut ({in_force}) is in force already; a cut never moves back (the edges keep the later one)"
            )))
        }
        Revoked::NoEvent => return Err(ApiError::EventNotFound),
    };
    tracing::warn!(event, cut, admitted = ?revocation.admitted, sessions, grants, "passes revoked");
    let body = json!({
        "event": event,
        "not_before": cut,
        "admitted": revocation.admitted,
        "sessions_revoked": sessions,
        "grants_revoked": grants,
        "edge": {"events": [{"id": event, "not_before": cut}]},
    });
    Ok(no_store(Json(body).into_response()))
}

/// The cut of a revocation at `now` (unix seconds): `before`, or by default the next
/// second (every pass issued until now, this second included). A cut in the future
/// would refuse the passes of visitors admitted after it is set; one older than the
/// longest pass lifetime revokes nothing.
fn checked_cut(before: Option<u64>, now: u64, max_pass_lifetime: u64) -> Result<u64, ApiError> {
    let Some(before) = before else {
        return Ok(now + 1);
    };
    if before > now + 1 {
        return Err(ApiError::BadRevocation(format!(
            "before: {before} is {} s in the future; a cut is a time already passed (omit it for now)",
            before - now
        )));
    }
    if before.saturating_add(max_pass_lifetime) < now {
        return Err(ApiError::BadRevocation(format!(
            "before: {before} is more than {max_pass_lifetime} s (the longest pass lifetime) ago: every pass issued before it has expired, it would revoke nothing"
        )));
    }
    Ok(before)
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
    fn a_cut_defaults_to_the_next_second_and_stays_within_the_pass_lifetime() {
        assert_eq!(checked_cut(None, 1_000, 600).unwrap(), 1_001);
        assert_eq!(checked_cut(Some(900), 1_000, 600).unwrap(), 900);
        assert!(checked_cut(Some(1_002), 1_000, 600).is_err());
        assert!(checked_cut(Some(399), 1_000, 600).is_err());
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"abcdef0123456789", b"abcdef0123456789"));
        assert!(!constant_time_eq(b"abcdef0123456788", b"abcdef0123456789"));
        assert!(!constant_time_eq(b"", b"abcdef0123456789"));
        assert!(!constant_time_eq(b"abcdef0123456789x", b"abcdef0123456789"));
    }
}
