//! Reads a request's whole body before the request takes a place under an in-flight cap.
//!
//! The caps (`in_flight`) bound how many requests wait on Redis at once. A handler that
//! reads its body inside a cap would let a client hold a place by sending the body
//! slowly, or never: a few hundred such connections (slowloris) would fill the cap and
//! every honest call would be shed with 503. So the body is read here, first, within
//! [`BODY_DEADLINE`] and the size limit, and only a complete request goes on.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// How long a client has to send its whole body once the headers have arrived.
pub const BODY_DEADLINE: Duration = Duration::from_secs(3);

/// The request with its whole body in memory, or the answer that refuses it: 408
/// `BODY_TIMEOUT` if the body is not complete within [`BODY_DEADLINE`], 413
/// `BODY_TOO_LARGE` beyond `limit` bytes, 400 `BODY_UNREADABLE` if the connection fails.
pub async fn read_whole(limit: usize, request: Request) -> Result<Request, Response> {
    // Most public calls (status polls) have no body at all: nothing to wait for.
    if http_body::Body::is_end_stream(request.body()) {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(BODY_DEADLINE, axum::body::to_bytes(body, limit)).await;
    let refusal = match read {
        Ok(Ok(bytes)) => return Ok(Request::from_parts(parts, Body::from(bytes))),
        Ok(Err(e)) if is_length_limit(&e) => ApiError::BodyTooLarge(limit),
        Ok(Err(_)) => ApiError::BodyUnreadable,
        Err(_) => ApiError::BodyTimeout(BODY_DEADLINE.as_secs()),
    };
    Err(refusal.into_response())
}

/// True if the body went over the limit (and not, say, the connection broke).
fn is_length_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}
