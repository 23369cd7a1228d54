//! `Idempotency-Key` on POST: a replay within five minutes returns the first answer;
//! the same key with a different request is refused; a replay racing the first request
//! is told to retry. Records live in Redis under the event's hash tag and expire (see
//! `store::idempotency`).

use std::future::Future;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::tickets::presented_ticket;
use super::{checked_event, AppResult};
use crate::store::{IdemBegin, Store};

/// Runs `handler` under the request's `Idempotency-Key`, if it has one. `route` and
/// `body`, with the event and the presented ticket, identify "the same request".
pub async fn idempotent<F, Fut>(
    store: &Store,
    ticket_cookie: &str,
    event: &str,
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
    handler: F,
) -> AppResult
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = AppResult>,
{
    let Some(key) = key(headers)? else {
        return handler().await;
    };
    checked_event(event)?;
    let ticket = presented_ticket(headers, ticket_cookie).unwrap_or("");
    let fp = fingerprint(&[route.as_bytes(), event.as_bytes(), ticket.as_bytes(), body]);
    match store.idem_begin(event, &key, &fp).await? {
        IdemBegin::New => {}
        IdemBegin::Replay(answer) => {
            let stored: Stored = serde_json::from_str(&answer)
                .map_err(|e| ApiError::Internal(format!("unreadable idempotency record: {e}")))?;
            return Ok(stored.replay());
        }
        IdemBegin::InProgress => return Err(ApiError::IdempotencyInProgress),
        IdemBegin::Conflict => return Err(ApiError::IdempotencyKeyReused),
    }
    match handler().await {
        Ok(response) => {
            let (stored, response) = Stored::capture(response).await;
            let answer = serde_json::to_string(&stored).unwrap_or_default();
            if store.idem_finish(event, &key, &fp, &answer).await.is_err() {
                let _ = store.idem_release(event, &key).await;
            }
            Ok(response)
        }
        Err(e) => {
            let _ = store.idem_release(event, &key).await;
            Err(e)
        }
    }
}

/// Headers worth replaying with a stored answer.
const REPLAYED_HEADERS: [&str; 3] = ["set-cookie", "x-wr-ticket", "cache-control"];

/// The `Idempotency-Key` of a request, if any; it must be a UUID.
fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    let is_uuid = text.len() == 36
        && text.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if !is_uuid {
        return Err(ApiError::BadIdempotencyKey);
    }
    Ok(Some(text))
}

/// What identifies "the same request" for a key.
fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A stored answer.
#[derive(Serialize, Deserialize)]
struct Stored {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Stored {
    /// Captures a response (its body must be small JSON) and gives it back.
    async fn capture(response: Response) -> (Stored, Response) {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024)
            .await
            .unwrap_or_default();
        let headers = parts
            .headers
            .iter()
            .filter(|(n, _)| REPLAYED_HEADERS.contains(&n.as_str()))
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let stored = Stored {
            status: parts.status.as_u16(),
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        let response = Response::from_parts(parts, axum::body::Body::from(bytes));
        (stored, response)
    }

    /// The stored answer as a response, marked as a replay.
    fn replay(&self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut response = (
            status,
            [("content-type", "application/json")],
            self.body.clone(),
        )
            .into_response();
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::from_str(value),
            ) {
                response.headers_mut().append(n, v);
            }
        }
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        response
    }
}
