//! Every error the HTTP API answers, and its one rendering:
//! `{"error":{"code":…,"message":…}}` with the right status, `Cache-Control: no-store`,
//! and `Retry-After` where retrying helps.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use wr_pass::wire::{POW_HEADER, TICKET_HEADER};

use super::pow::IssuedChallenge;
use crate::gates::log_throttle::LogThrottle;
use crate::store::StoreError;

/// An error answer of the API. The code each variant answers is its contract with
/// clients (see the HTTP API in `docs/origin-queue.md`).
#[derive(Debug)]
pub enum ApiError {
    /// 404 `NOT_FOUND`: no such route.
    NoRoute,
    /// 404 `EVENT_NOT_FOUND`.
    EventNotFound,
    /// 400 `BAD_EVENT_ID`: why the id is not valid.
    BadEventId(String),
    /// 400 `BAD_JSON`: the body is not the JSON the route takes.
    BadJson(String),
    /// 400 `BAD_QUERY`: what is wrong with the query string.
    BadQuery(String),
    /// 409 `NOT_DRAWN_YET`: the event's opening draw has not run (or it has none).
    NotDrawnYet,
    /// 422 `BAD_CONFIG`: every problem with an event configuration.
    BadConfig(Vec<String>),
    /// 400 `BAD_IDEMPOTENCY_KEY`: not a UUID.
    BadIdempotencyKey,
    /// 409 `IDEMPOTENCY_IN_PROGRESS`: the first request with this key still runs.
    IdempotencyInProgress,
    /// 422 `IDEMPOTENCY_KEY_REUSED`: the key was used for a different request.
    IdempotencyKeyReused,
    /// 401 `TICKET_REQUIRED`: no ticket presented (names the ticket cookie).
    TicketRequired {
        /// The ticket cookie's name.
        cookie: String,
    },
    /// 401 `TICKET_INVALID`: why the ticket was refused.
    TicketInvalid(String),
    /// 401 `JWT_REQUIRED`.
    JwtRequired,
    /// 401 `JWT_INVALID`: why the identity token was refused.
    JwtInvalid(String),
    /// 403 `ADMIN_DISABLED`: no admin token configured.
    AdminDisabled,
    /// 401 `UNAUTHORIZED`: the admin bearer token is missing or wrong.
    Unauthorized,
    /// 429 `RATE_LIMITED`, retry after this many seconds.
    RateLimited(u32),
    /// 409 `NOT_OPEN_YET`: the event's pre-queue opens in this many seconds, at this
    /// Unix time; nobody joins before.
    NotOpenYet {
        /// Seconds until the pre-queue opens (at least 1).
        in_secs: u32,
        /// When it opens (Unix seconds).
        opens_at: u64,
    },
    /// 503 `QUEUE_BUSY`: over the in-flight cap.
    QueueBusy,
    /// 503 `QUEUE_UNAVAILABLE`: Redis trouble.
    QueueUnavailable,
    /// 413 `BODY_TOO_LARGE`, over this many bytes.
    BodyTooLarge(usize),
    /// 400 `BODY_UNREADABLE`.
    BodyUnreadable,
    /// 408 `BODY_TIMEOUT`, not complete within this many seconds.
    BodyTimeout(u64),
    /// 500 `EDGE_MISMATCH`: how the edge's wire settings differ from ours.
    EdgeMismatch(String),
    /// 500 `INTERNAL`: a bug; the detail is logged, never sent.
    Internal(String),
    /// A session-end report's pass is not valid (403; the code says why, as the
    /// edge's do).
    PassRefused(wr_pass::Rejection),
    /// A session-end report for a session that is not active (409): ended already (a
    /// repeated report), never claimed, or of an earlier session.
    SessionNotActive,
    /// 403 `POW_REQUIRED`: a new place needs this challenge solved (none was shown, or
    /// one easier than the event asks now). The answer carries the challenge.
    PowRequired(Box<IssuedChallenge>),
    /// 400 `POW_INVALID`: why the solution was refused (malformed, forged, another
    /// event's or visitor's, or not solving its challenge).
    PowInvalid(String),
    /// 403 `POW_EXPIRED`: the challenge expired; join without it for a new one.
    PowExpired,
    /// 409 `POW_REPLAYED`: the solution has already taken a place.
    PowReplayed,
    /// 403 `ADMISSION_REVOKED`: the operator revoked this visitor's admission and
    /// barred them from joining again.
    AdmissionRevoked,
    /// 422 `BAD_REVOCATION`: why a revocation was refused.
    BadRevocation(String),
    /// 422 `BAD_PAGE_TEMPLATE`: every problem with an uploaded page template (also in
    /// `error.problems`, one string each).
    BadPageTemplate(Vec<String>),
    /// 404 `PAGE_TEMPLATE_NOT_FOUND`: the event has no page template (it uses the
    /// built-in page).
    NoPageTemplate,
}

impl ApiError {
    /// The status, the code and the message.
    fn parts(&self) -> (StatusCode, &'static str, String) {
        use ApiError::*;
        match self {
            NoRoute => (StatusCode::NOT_FOUND, "NOT_FOUND", "No such route.".into()),
            EventNotFound => (
                StatusCode::NOT_FOUND,
                "EVENT_NOT_FOUND",
                "No such event.".into(),
            ),
            BadEventId(why) => (
                StatusCode::BAD_REQUEST,
                "BAD_EVENT_ID",
                format!("event id {why} (1-64 of [a-z0-9_-])"),
            ),
            BadJson(why) => (StatusCode::BAD_REQUEST, "BAD_JSON", why.clone()),
            BadQuery(why) => (StatusCode::BAD_REQUEST, "BAD_QUERY", why.clone()),
            NotDrawnYet => (
                StatusCode::CONFLICT,
                "NOT_DRAWN_YET",
                "The opening draw has not run (or the event has no pre-queue).".into(),
            ),
            BadConfig(problems) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "BAD_CONFIG",
                problems.join("; "),
            ),
            BadIdempotencyKey => (
                StatusCode::BAD_REQUEST,
                "BAD_IDEMPOTENCY_KEY",
                "Idempotency-Key must be a UUID.".into(),
            ),
            IdempotencyInProgress => (
                StatusCode::CONFLICT,
                "IDEMPOTENCY_IN_PROGRESS",
                "A request with this Idempotency-Key is still running.".into(),
            ),
            IdempotencyKeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "This Idempotency-Key was used for a different request.".into(),
            ),
            TicketRequired { cookie } => (
                StatusCode::UNAUTHORIZED,
                "TICKET_REQUIRED",
                format!(
                    "Join first: a queue ticket (cookie {cookie} or header {TICKET_HEADER}) is required."
                ),
            ),
            TicketInvalid(why) => (
                StatusCode::UNAUTHORIZED,
                "TICKET_INVALID",
                format!("The queue ticket is not valid ({why})."),
            ),
            JwtRequired => (
                StatusCode::UNAUTHORIZED,
                "JWT_REQUIRED",
                "Sign in first: a bearer identity token is required to join.".into(),
            ),
            JwtInvalid(why) => (
                StatusCode::UNAUTHORIZED,
                "JWT_INVALID",
                format!("The identity token is not valid: {why}."),
            ),
            AdminDisabled => (
                StatusCode::FORBIDDEN,
                "ADMIN_DISABLED",
                "The admin API is disabled: set WR_ADMIN_TOKEN.".into(),
            ),
            Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "A valid admin bearer token is required.".into(),
            ),
            RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                "Too many requests: retry later.".into(),
            ),
            NotOpenYet { opens_at, .. } => (
                StatusCode::CONFLICT,
                "NOT_OPEN_YET",
                format!("The line forms at {opens_at} (Unix time): join from then on."),
            ),
            QueueBusy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "QUEUE_BUSY",
                "The queue is busy; retry shortly.".into(),
            ),
            QueueUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "QUEUE_UNAVAILABLE",
                "The queue is briefly unavailable; retry shortly.".into(),
            ),
            BodyTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "BODY_TOO_LARGE",
                format!("The request body is larger than {limit} bytes."),
            ),
            BodyUnreadable => (
                StatusCode::BAD_REQUEST,
                "BODY_UNREADABLE",
                "The request body could not be read.".into(),
            ),
            BodyTimeout(secs) => (
                StatusCode::REQUEST_TIMEOUT,
                "BODY_TIMEOUT",
                format!("The request body did not arrive within {secs} s."),
            ),
            EdgeMismatch(differences) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "EDGE_MISMATCH",
                format!(
                    "The edge filter and origin-queue are configured differently: {differences}."
                ),
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "Internal error.".into(),
            ),
            PassRefused(reason) => {
                use wr_pass::Rejection as R;
                let code = match reason {
                    R::Expired => "PASS_EXPIRED",
                    R::NotYetValid => "PASS_NOT_YET_VALID",
                    R::WrongEvent => "PASS_WRONG_EVENT",
                    R::Revoked => "PASS_REVOKED",
                    _ => "PASS_INVALID",
                };
                (
                    StatusCode::FORBIDDEN,
                    code,
                    format!("The pass is not valid ({reason})."),
                )
            }
            PowRequired(issued) => (
                StatusCode::FORBIDDEN,
                "POW_REQUIRED",
                format!(
                    "Joining needs proof of work: solve the challenge (difficulty {}) and join again with {POW_HEADER}: <challenge>:<nonce>.",
                    issued.difficulty
                ),
            ),
            PowInvalid(why) => (
                StatusCode::BAD_REQUEST,
                "POW_INVALID",
                format!("The proof of work is not valid: {why}. Join without it for a new challenge."),
            ),
            PowExpired => (
                StatusCode::FORBIDDEN,
                "POW_EXPIRED",
                "The challenge has expired. Join without it for a new challenge.".into(),
            ),
            PowReplayed => (
                StatusCode::CONFLICT,
                "POW_REPLAYED",
                "This solution has already been used to join. Join without it for a new challenge.".into(),
            ),
            AdmissionRevoked => (
                StatusCode::FORBIDDEN,
                "ADMISSION_REVOKED",
                "The operator revoked this visitor's admission: it cannot join this event again.".into(),
            ),
            BadRevocation(why) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "BAD_REVOCATION",
                why.clone(),
            ),
            BadPageTemplate(problems) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "BAD_PAGE_TEMPLATE",
                format!("The page template is refused: {}", problems.join("; ")),
            ),
            NoPageTemplate => (
                StatusCode::NOT_FOUND,
                "PAGE_TEMPLATE_NOT_FOUND",
                "This event has no page template: it uses the built-in page.".into(),
            ),
            SessionNotActive => (
                StatusCode::CONFLICT,
                "SESSION_NOT_ACTIVE",
                "No active session holds this pass: it ended already, or belongs to an earlier session.".into(),
            ),
        }
    }

    /// Seconds a client should wait before retrying, where retrying helps.
    fn retry_after(&self) -> Option<u32> {
        match self {
            ApiError::RateLimited(secs) => Some(*secs),
            ApiError::NotOpenYet { in_secs, .. } => Some(*in_secs),
            ApiError::QueueBusy | ApiError::IdempotencyInProgress => Some(1),
            ApiError::QueueUnavailable => Some(2),
            _ => None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                warn_unavailable(&detail);
                ApiError::QueueUnavailable
            }
            StoreError::BadReply(detail) => {
                ApiError::Internal(format!("unexpected Redis reply: {detail}"))
            }
        }
    }
}

/// Logs Redis trouble at most once a second, with the number of failures since the
/// last line.
fn warn_unavailable(detail: &str) {
    static THROTTLE: LogThrottle = LogThrottle::new();
    if let Some(failures) = THROTTLE.failure(crate::clock::now_ms()) {
        tracing::warn!(error = %detail, failures, "redis unavailable");
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error (a bug)");
        }
        let (status, code, message) = self.parts();
        let mut body = json!({"error": {"code": code, "message": message}});
        if let ApiError::NotOpenYet { opens_at, .. } = &self {
            body["error"]["opens_at"] = json!(opens_at);
        }
        if let ApiError::PowRequired(issued) = &self {
            body["error"]["pow"] = json!({
                "challenge": issued.challenge,
                "difficulty": issued.difficulty,
                "algorithm": wr_pass::pow::ALGORITHM,
                "expires_at": issued.expires_at,
                "header": POW_HEADER,
            });
        }
        if let ApiError::BadPageTemplate(problems) = &self {
            body["error"]["problems"] = json!(problems);
        }
        let mut response = (status, axum::Json(body)).into_response();
        response
            .extensions_mut()
            .insert(crate::telemetry::Outcome(code));
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joining_before_the_prequeue_is_409_with_retry_after_until_it_opens() {
        let early = ApiError::NotOpenYet {
            in_secs: 30,
            opens_at: 1_800_000_000,
        };
        let response = early.into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
    }

    #[test]
    fn redis_trouble_is_503_with_retry_after() {
        let response = ApiError::from(StoreError::unavailable("down")).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn a_bad_reply_is_a_500_that_hides_its_detail() {
        let response = ApiError::from(StoreError::bad_reply("secret detail")).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }
}
