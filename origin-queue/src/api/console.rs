//! The operator console: a self-contained page on origin-queue's own port (never
//! through the edge), and the data it reads with the admin bearer token.
//!
//! The page (`GET /v1/admin/console`) holds no data and no secret: it asks for the admin
//! token (or takes it from the URL's fragment, which no server or log ever sees), keeps
//! it in the tab's session storage, and sends it as a bearer token with every call of
//! the admin API it makes: the figures (`GET /v1/admin/events`,
//! `GET /v1/admin/events/{event}/console`) and the controls the admin API has (rate,
//! pause and resume, mode).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{no_store, Admin, ApiError, AppResult, Queue};
use crate::console::{History, PERIOD};

const PAGE: &str = include_str!("console/console.html");

/// `GET /v1/admin/console`: the page (404 `ADMIN_DISABLED`-style refusal when the admin
/// API is off, as for every admin route).
pub async fn page(State(admin): State<Arc<Admin>>) -> Result<Response, ApiError> {
    if admin.token.is_none() {
        return Err(ApiError::AdminDisabled);
    }
    let nonce = {
        use base64::Engine;
        let bytes: [u8; 18] = rand::random();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; \
         connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    );
    let html = PAGE.replace("__NONCE__", &nonce);
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
        ],
        html,
    )
        .into_response())
}

/// `GET /v1/admin/events`: the events the admission loop steps through.
pub async fn events(State(queue): State<Arc<Queue>>) -> AppResult {
    let mut events = queue.store.events().await?;
    events.sort();
    Ok(no_store(Json(json!({ "events": events })).into_response()))
}

/// `GET /v1/admin/events/{event}/console`: the event's figures now and its samples of
/// the last 15 minutes (oldest first, every `period_seconds`).
pub async fn figures(
    State(queue): State<Arc<Queue>>,
    State(history): State<Arc<History>>,
    Path(event): Path<String>,
) -> AppResult {
    let stats = queue.stats_of(&event).await?;
    let body = json!({
        "event": event,
        "period_seconds": PERIOD.as_secs(),
        "stats": stats,
        "samples": history.of(&event),
    });
    Ok(no_store(Json(body).into_response()))
}
