//! What every request passes before its handler: timing by route, and for the public
//! calls the edge check, the whole body, the in-flight cap and the per-client limit.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use tracing::Instrument;
use wr_pass::wire;

use super::client_ip::client_ip;
use super::error::ApiError;
use super::{AppState, Gates, MAX_BODY};
use crate::clock::now_ms;
use crate::gates::in_flight::InFlight;
use crate::gates::missed_polls::MissedPolls;
use crate::telemetry::{request_parent, Outcome};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Counts and times every request by route and status, in its trace span (see
/// `telemetry`: disabled, and next to free, while traces are off).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // A clone of the matched path shares its text (no allocation per request).
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let span = request_span(&request, route);
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    state
        .metrics
        .record_request(route, status, started.elapsed());
    if !span.is_disabled() {
        let outcome = response.extensions().get::<Outcome>().map_or(
            if response.status().is_success() {
                "ok"
            } else {
                "error"
            },
            |o| o.0,
        );
        span.record("http.response.status_code", status);
        span.record("wr.outcome", outcome);
        if response.status().is_server_error() {
            span.record("otel.status_code", "error");
        }
    }
    response
}

/// The server span of one request, if it is traced (see `telemetry::request_parent`):
/// method, route and event id (never a header's value), the child of the caller's
/// `traceparent` if it sent one. Not traced: a disabled span, and no work.
fn request_span(request: &Request, route: &str) -> tracing::Span {
    let Some(parent) = request_parent(request.headers()) else {
        return tracing::Span::none();
    };
    let span = crate::trace_span!(
        "http",
        otel.name = tracing::field::Empty,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %request.method(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        wr.event = tracing::field::Empty,
        wr.outcome = tracing::field::Empty,
    );
    if !span.is_disabled() {
        span.record(
            "otel.name",
            tracing::field::display(format_args!("{} {route}", request.method())),
        );
        if let Some(event) = event_of(request.uri().path()) {
            span.record("wr.event", event);
        }
        // Fails only if the span had started a trace already, which it has not.
        let _ = span.set_parent(parent);
    }
    span
}

/// The event id in a path of the API or the page, if it is a valid one.
fn event_of(path: &str) -> Option<&str> {
    let admin_events = format!("{}events/", wire::ADMIN_PREFIX);
    let rest = [
        wire::EVENTS_PREFIX,
        wire::WAITING_ROOM_PREFIX,
        &admin_events,
    ]
    .into_iter()
    .find_map(|prefix| path.strip_prefix(prefix))?;
    let event = rest.split('/').next()?;
    wr_pass::validate_event_id(event).ok().map(|_| event)
}

/// The gate in front of joins (see [`gate`]).
pub async fn gate_joins(State(state): State<AppState>, request: Request, next: Next) -> Response {
    gate(&state, &state.gates.join_cap, "join", None, request, next).await
}

/// The gate in front of the other public calls (see [`gate`]); a shed poll is
/// remembered for the abandonment sweep.
pub async fn gate_polls(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let missed = Some(&*state.gates.missed_polls);
    gate(&state, &state.gates.poll_cap, "poll", missed, request, next).await
}

/// What a report from an edge or a backend passes before its handler (the session-end
/// route): the wire-settings check and the whole body first, as every public call;
/// no in-flight cap and no per-client limit, since one edge or backend reports for
/// many visitors from one address (the handler limits per visitor).
pub async fn gate_reports(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match checked_whole(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal,
    }
}

/// Steps 0 and 1 of every public call (see [`gate`]): an edge that forwarded it agrees
/// with us on the wire settings, and its whole body has arrived.
async fn checked_whole(state: &AppState, request: Request) -> Result<Request, Response> {
    if let Err(mismatch) = super::edge_check::check_edge(&state.tickets.wire, request.headers()) {
        return Err(mismatch.into_response());
    }
    super::body_first::read_whole(MAX_BODY, request).await
}

/// What a public call passes before its handler, in this order (one middleware, as
/// each layer costs a boxed future per request on the hottest route):
/// 0. an edge that forwarded it must agree with us on the wire settings (see
///    `edge_check`);
/// 1. its whole body (see `body_first`), before it can take a place under a cap;
/// 2. `cap`: beyond it, 503 at once (remembered in `missed`, if given); each request's
///    time adjusts the cap (see `in_flight`);
/// 3. the per-client rate limit.
async fn gate(
    state: &AppState,
    cap: &InFlight,
    name: &'static str,
    missed: Option<&MissedPolls>,
    request: Request,
    next: Next,
) -> Response {
    let request = match checked_whole(state, request).await {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    let Some(_entered) = cap.try_enter() else {
        state.metrics.record_shed(name);
        if let Some(missed) = missed {
            missed.record(now_ms());
        }
        return ApiError::QueueBusy.into_response();
    };
    let started = Instant::now();
    let response = match state.gates.limit_client(&request) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    };
    cap.observe(started.elapsed(), now_ms());
    response
}

impl Gates {
    /// The per-client limit on the public API.
    fn limit_client(&self, request: &Request) -> Result<(), ApiError> {
        let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
            return Ok(());
        };
        let ip = client_ip(peer.ip(), request.headers(), &self.trusted_proxies);
        self.client_limiter
            .take(&ip, Instant::now())
            .map_err(ApiError::RateLimited)
    }

    /// The per-visitor limit, for visitors seen before.
    pub fn limit_visitor(&self, visitor: &str) -> Result<(), ApiError> {
        self.visitor_limiter
            .take(visitor, Instant::now())
            .map_err(ApiError::RateLimited)
    }
}

#[cfg(test)]
mod tests {
    use super::event_of;

    #[test]
    fn the_event_of_a_path_is_read_only_when_valid() {
        assert_eq!(event_of("/v1/events/demo/join"), Some("demo"));
        assert_eq!(event_of("/waiting-room/demo"), Some("demo"));
        assert_eq!(event_of("/v1/admin/events/demo/stats"), Some("demo"));
        assert_eq!(event_of("/v1/events/<script>/join"), None);
        assert_eq!(event_of("/metrics"), None);
    }
}
