//! The operator's page template of an event, under `/v1/admin/events/{event}/page`
//! (behind the admin bearer token): `PUT` stores the HTML once it passes the check
//! (`page::template`), `GET` gives it back, `DELETE` restores the built-in page. The
//! page route reads it through a cache of a few seconds (`page::PageTemplates`), so a
//! change shows on every replica within 5 s.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use super::page::template::{Template, MAX_TEMPLATE_BYTES};
use super::{checked_event, no_store, AppResult, Queue};
use crate::clock::now_ms;

/// `PUT /v1/admin/events/{event}/page`: the body is the template (UTF-8 HTML, at most
/// [`MAX_TEMPLATE_BYTES`]); 422 `BAD_PAGE_TEMPLATE` with every problem, 413 over the
/// size, 404 for no such event.
pub async fn put_page(
    State(queue): State<Arc<Queue>>,
    Path(event): Path<String>,
    request: Request,
) -> AppResult {
    checked_event(&event)?;
    // The route's own limit (the router's default is for small JSON bodies): 413
    // `BODY_TOO_LARGE` beyond it, 408 if the body does not arrive within 3 s.
    let request = match super::body_first::read_whole(MAX_TEMPLATE_BYTES, request).await {
        Ok(request) => request,
        Err(refusal) => return Ok(refusal),
    };
    let body = axum::body::to_bytes(request.into_body(), MAX_TEMPLATE_BYTES)
        .await
        .map_err(|_| ApiError::BodyUnreadable)?;
    let template = Template::check_upload(&body).map_err(ApiError::BadPageTemplate)?;
    if !queue
        .store
        .put_page_template(&event, template.source(), now_ms())
        .await?
    {
        return Err(ApiError::EventNotFound);
    }
    tracing::info!(event, bytes = body.len(), "page template stored");
    Ok(no_store(
        Json(json!({"event": event, "page": "template", "bytes": body.len()})).into_response(),
    ))
}

/// `GET /v1/admin/events/{event}/page`: the stored template, as text (never rendered
/// here); 404 `PAGE_TEMPLATE_NOT_FOUND` when the event uses the built-in page.
pub async fn get_page(State(queue): State<Arc<Queue>>, Path(event): Path<String>) -> AppResult {
    checked_event(&event)?;
    let html = queue
        .store
        .page_template(&event)
        .await?
        .ok_or(ApiError::NoPageTemplate)?;
    Ok(no_store(
        (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            Bytes::from(html),
        )
            .into_response(),
    ))
}

/// `DELETE /v1/admin/events/{event}/page`: back to the built-in page (whether or not
/// there was a template).
pub async fn delete_page(State(queue): State<Arc<Queue>>, Path(event): Path<String>) -> AppResult {
    checked_event(&event)?;
    let removed = queue.store.delete_page_template(&event).await?;
    tracing::info!(event, removed, "page template removed");
    Ok(no_store(
        Json(json!({"event": event, "page": "built-in", "removed": removed})).into_response(),
    ))
}
