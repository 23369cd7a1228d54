//! The HTTP API: thin handlers over [`Store`], state passed explicitly.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::Rng;
use serde::Serialize;
use serde_json::json;
use wr_pass::wire::{self, Wire, TICKET_HEADER};
use wr_pass::{validate_event_id, Claims, KeyRing, TokenKind, Validity};

use crate::bearer::bearer_token;
use crate::client_ip::client_ip;
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::eta::{estimate, poll_after_ms, Observed};
use crate::eta_record::EtaRecord;
use crate::idempotency::{self, Stored};
use crate::in_flight::InFlight;
use crate::join_batch::{JoinBatcher, Placed};
use crate::jwt::JwtVerifier;
use crate::limiter::Limiter;
use crate::metrics::Metrics;
use crate::missed_polls::MissedPolls;
use crate::status_batch::{Answer, StatusBatcher};
use crate::store::{EventConfig, IdemBegin, Joined, Standing, Store};

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024;

/// What every handler may use.
pub struct AppState {
    /// Redis.
    pub store: Store,
    /// Joins, batched per event into one script call.
    pub joins: JoinBatcher,
    /// Status polls, batched per event into one script call.
    pub status_polls: StatusBatcher,
    /// Signing keys for tickets and passes.
    pub keys: KeyRing,
    /// Cookie names, clock-skew leeway and longest pass lifetime, as the edge has them.
    pub wire: Wire,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Admin bearer token; `None` disables the admin API.
    pub admin_token: Option<String>,
    /// Adds `Secure` to cookies.
    pub cookie_secure: bool,
    /// Ticket lifetime.
    pub ticket_ttl_secs: u64,
    /// The cap on joins in flight.
    pub join_cap: InFlight,
    /// The cap on the other public calls in flight (status, leave, event state): kept
    /// apart so that a flood of new visitors cannot crowd out those already in line.
    pub poll_cap: InFlight,
    /// When a poll was last shed or failed on Redis (see `missed_polls`).
    pub missed_polls: Arc<MissedPolls>,
    /// Per client address.
    pub client_limiter: Limiter<IpAddr>,
    /// Per visitor id.
    pub visitor_limiter: Limiter<String>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Optional user identity from a JWT.
    pub jwt: Option<Arc<JwtVerifier>>,
}

type AppResult = Result<Response, ApiError>;

/// The service's routes.
pub fn router(state: Arc<AppState>) -> Router {
    let admin_route = |tail: &str| format!("{}events/{{event}}{tail}", wire::ADMIN_PREFIX);
    let event_route = |tail: &str| format!("{}{{event}}{tail}", wire::EVENTS_PREFIX);
    let admin = Router::new()
        .route(&admin_route(""), put(configure_event))
        .route(&admin_route("/pause"), post(pause))
        .route(&admin_route("/resume"), post(resume))
        .route(&admin_route("/stats"), get(stats))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    let joins = Router::new()
        .route(&event_route("/join"), post(join))
        .route_layer(middleware::from_fn_with_state(state.clone(), gate_joins));
    let polls = Router::new()
        .route(&event_route("/status"), get(status))
        .route(&event_route("/leave"), post(leave))
        .route(&event_route(""), get(public_state))
        .route_layer(middleware::from_fn_with_state(state.clone(), gate_polls));
    let page = format!("{}{{event}}", wire::WAITING_ROOM_PREFIX);
    Router::new()
        .merge(joins)
        .merge(polls)
        .route(&page, get(crate::page::waiting_room))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .merge(admin)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "No such route.") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Counts and times every request by route and status.
async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    // A clone of the matched path shares its text (no allocation per request).
    let route = request.extensions().get::<MatchedPath>().cloned();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.record_request(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The gate in front of joins (see [`gate`]).
async fn gate_joins(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    gate(&state, &state.join_cap, "join", None, request, next).await
}

/// The gate in front of the other public calls (see [`gate`]); a shed poll is
/// remembered for the abandonment sweep.
async fn gate_polls(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let missed = Some(&*state.missed_polls);
    gate(&state, &state.poll_cap, "poll", missed, request, next).await
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
    if let Err(mismatch) = crate::edge_check::check_edge(&state.wire, request.headers()) {
        return mismatch.into_response();
    }
    let request = match crate::body_first::read_whole(MAX_BODY, request).await {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    let Some(_entered) = cap.try_enter() else {
        state.metrics.record_shed(name);
        if let Some(missed) = missed {
            missed.record(now_ms());
        }
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "QUEUE_BUSY",
            "The queue is busy; retry shortly.",
        )
        .retry_after(1)
        .into_response();
    };
    let started = Instant::now();
    let response = match limit_client(state, &request) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    };
    cap.observe(started.elapsed(), now_ms());
    response
}

/// The per-client limit on the public API.
fn limit_client(state: &AppState, request: &Request) -> Result<(), ApiError> {
    let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
        return Ok(());
    };
    let ip = client_ip(peer.ip(), request.headers(), &state.trusted_proxies);
    state
        .client_limiter
        .take(&ip, Instant::now())
        .map_err(too_many)
}

fn too_many(secs: u32) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        "Too many requests: retry later.",
    )
    .retry_after(secs)
}

fn limit_visitor(state: &AppState, visitor: &str) -> Result<(), ApiError> {
    state
        .visitor_limiter
        .take(visitor, Instant::now())
        .map_err(too_many)
}

/// Runs `handler` under the request's `Idempotency-Key`, if it has one.
async fn idempotent<F, Fut>(
    state: &AppState,
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
    let Some(key) = idempotency::key(headers)? else {
        return handler().await;
    };
    checked_event(event)?;
    let ticket = presented_ticket(headers, &state.wire.ticket_cookie).unwrap_or("");
    let fp =
        idempotency::fingerprint(&[route.as_bytes(), event.as_bytes(), ticket.as_bytes(), body]);
    match state.store.idem_begin(event, &key, &fp).await? {
        IdemBegin::New => {}
        IdemBegin::Replay(answer) => {
            let stored: Stored = serde_json::from_str(&answer).map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "Unreadable idempotency record.",
                )
            })?;
            return Ok(stored.replay());
        }
        IdemBegin::InProgress => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "IDEMPOTENCY_IN_PROGRESS",
                "A request with this Idempotency-Key is still running.",
            )
            .retry_after(1));
        }
        IdemBegin::Conflict => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "This Idempotency-Key was used for a different request.",
            ));
        }
    }
    match handler().await {
        Ok(response) => {
            let (stored, response) = Stored::capture(response).await;
            let answer = serde_json::to_string(&stored).unwrap_or_default();
            if state
                .store
                .idem_finish(event, &key, &fp, &answer)
                .await
                .is_err()
            {
                let _ = state.store.idem_release(event, &key).await;
            }
            Ok(response)
        }
        Err(e) => {
            let _ = state.store.idem_release(event, &key).await;
            Err(e)
        }
    }
}

async fn require_admin(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.admin_token else {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "ADMIN_DISABLED",
            "The admin API is disabled: set WR_ADMIN_TOKEN.",
        )
        .into_response();
    };
    let given = bearer_token(&headers).unwrap_or("");
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "A valid admin bearer token is required.",
        )
        .into_response();
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

fn checked_event(event: &str) -> Result<(), ApiError> {
    validate_event_id(event).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "BAD_EVENT_ID",
            format!("event id {e} (1-64 of [a-z0-9_-])"),
        )
    })
}

fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.trim())
}

fn presented_ticket<'h>(headers: &'h HeaderMap, cookie: &str) -> Option<&'h str> {
    headers
        .get(TICKET_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| cookie_value(headers, cookie))
}

/// The claims of a valid ticket for `event`.
fn ticket_claims(
    state: &AppState,
    headers: &HeaderMap,
    event: &str,
) -> Result<Option<Claims>, ApiError> {
    let Some(ticket) = presented_ticket(headers, &state.wire.ticket_cookie) else {
        return Ok(None);
    };
    let validity = Validity::at(now_ms() / 1000, state.wire.clock_skew_seconds);
    match state
        .keys
        .verify(TokenKind::Ticket, ticket.as_bytes(), validity, Some(event))
    {
        Ok(claims) => Ok(Some(claims)),
        Err(reason) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "TICKET_INVALID",
            format!("The queue ticket is not valid ({reason})."),
        )),
    }
}

fn set_cookie(response: &mut Response, name: &str, value: &str, max_age: u64, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    if let Ok(v) = HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Where a visitor stands: the body of join and status answers (see the HTTP API in
/// the README). Serialized straight from this struct, one allocation for the text.
#[derive(Serialize)]
struct Placement<'a> {
    visitor: &'a str,
    status: &'static str,
    position: Option<u64>,
    waiting: u64,
    eta_seconds: Option<u64>,
    eta_confidence: Option<f64>,
    poll_after_ms: u64,
    /// Present (true) only while the operator has paused admission.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    paused: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pass: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pass_expires_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admitted_at_ms: Option<u64>,
}

impl<'a> Placement<'a> {
    /// In line at 0-based `rank`, with the ETA and when to poll next.
    fn waiting(visitor: &'a str, rank: u64, waiting: u64, observed: &Observed) -> Self {
        let position = rank + 1;
        let (eta, confidence) = estimate(position, observed);
        Placement {
            position: Some(position),
            eta_seconds: Some(eta),
            eta_confidence: Some(confidence),
            poll_after_ms: poll_after_ms(eta, rand::rng().random::<f64>(), observed.poll_cap_ms),
            paused: observed.paused,
            ..Placement::other(visitor, "waiting", waiting)
        }
    }

    /// Not in line: `admitted`, `expired` or `closed`.
    fn other(visitor: &'a str, status: &'static str, waiting: u64) -> Self {
        Placement {
            visitor,
            status,
            position: None,
            waiting,
            eta_seconds: None,
            eta_confidence: None,
            poll_after_ms: if status == "admitted" { 0 } else { 5_000 },
            paused: false,
            pass: None,
            pass_expires_at: None,
            admitted_at_ms: None,
        }
    }
}

fn new_visitor_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn join(
    State(state): State<Arc<AppState>>,
    Path(event): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult {
    idempotent(&state, &event, &headers, "join", &body, || {
        join_now(&state, event.clone(), &headers)
    })
    .await
}

async fn join_now(state: &AppState, event: String, headers: &HeaderMap) -> AppResult {
    checked_event(&event)?;
    // A bad or foreign ticket is replaced, never trusted.
    let ticket = ticket_claims(state, headers, &event).ok().flatten();
    let known = match user_visitor(state, headers).await? {
        Some(user) => Some(user),
        None => ticket.as_ref().map(|t| t.visitor.clone()),
    };
    // Only visitors seen before are limited: a new id has a full bucket by definition,
    // and tracking every fresh id would fill the limiter during a join flood.
    let visitor = match known {
        Some(v) => {
            limit_visitor(state, &v)?;
            v
        }
        None => new_visitor_id(),
    };

    let now = now_ms();
    let Placed {
        joined,
        waiting,
        observed,
    } = state.joins.join(&event, &visitor).await?;
    // The promise shown at join travels in the ticket: a new place gets a new record,
    // an old place keeps the one its ticket carries.
    let mut promise = ticket
        .filter(|t| t.visitor == visitor)
        .and_then(|t| EtaRecord::from_claims(&t));
    let body = match joined {
        Joined::NoEvent => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "EVENT_NOT_FOUND",
                "No such event.",
            ))
        }
        Joined::Closed => Placement::other(&visitor, "closed", 0),
        Joined::Admitted => Placement::other(&visitor, "admitted", waiting),
        Joined::Waiting { rank, new_seq } => {
            let body = Placement::waiting(&visitor, rank, waiting, &observed);
            if new_seq.is_some() {
                promise = body.eta_seconds.map(|eta| EtaRecord {
                    joined_ms: now,
                    eta_ms: eta * 1000,
                });
            }
            body
        }
    };
    let mut response = no_store(Json(body).into_response());
    if !matches!(joined, Joined::Closed) {
        let mut claims = Claims::new(
            &event,
            &visitor,
            now / 1000,
            now / 1000 + state.ticket_ttl_secs,
        );
        claims
            .extensions
            .extend(promise.map(EtaRecord::to_extension));
        let ticket = state.keys.mint(TokenKind::Ticket, &claims).map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string())
        })?;
        set_cookie(
            &mut response,
            &state.wire.ticket_cookie,
            &ticket,
            state.ticket_ttl_secs,
            state.cookie_secure,
        );
        response.headers_mut().insert(
            TICKET_HEADER,
            HeaderValue::from_str(&ticket).map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "ticket header",
                )
            })?,
        );
    }
    Ok(response)
}

/// With JWT identity configured: the user's visitor id from a valid bearer token, an
/// error for an invalid one, and an error for none when tokens are required.
async fn user_visitor(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(verifier) = &state.jwt else {
        return Ok(None);
    };
    match bearer_token(headers) {
        Some(token) => verifier.visitor(token).await.map(Some).map_err(|e| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "JWT_INVALID",
                format!("The identity token is not valid: {}.", e.0),
            )
        }),
        None if verifier.required() => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "JWT_REQUIRED",
            "Sign in first: a bearer identity token is required to join.",
        )),
        None => Ok(None),
    }
}

fn require_ticket(state: &AppState, headers: &HeaderMap, event: &str) -> Result<Claims, ApiError> {
    ticket_claims(state, headers, event)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "TICKET_REQUIRED",
            format!(
                "Join first: a queue ticket (cookie {} or header {TICKET_HEADER}) is required.",
                state.wire.ticket_cookie
            ),
        )
    })
}

async fn status(
    State(state): State<Arc<AppState>>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> AppResult {
    checked_event(&event)?;
    let ticket = require_ticket(&state, &headers, &event)?;
    let visitor = ticket.visitor.clone();
    limit_visitor(&state, &visitor)?;
    let Some(Answer {
        standing,
        waiting,
        observed,
    }) = state
        .status_polls
        .status(&event, &visitor)
        .await
        .inspect_err(|_| state.missed_polls.record(now_ms()))?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "EVENT_NOT_FOUND",
            "No such event.",
        ));
    };
    let now = now_ms();
    match standing {
        Standing::Waiting { rank } => Ok(no_store(
            Json(Placement::waiting(&visitor, rank, waiting, &observed)).into_response(),
        )),
        Standing::Expired => Ok(no_store(
            Json(Placement::other(&visitor, "expired", waiting)).into_response(),
        )),
        Standing::Admitted {
            session_end_ms,
            claimed_now,
        } => {
            // Actual wait: join to grant (the visitor's polling lag is not the queue's).
            let error = claimed_now
                .zip(EtaRecord::from_claims(&ticket))
                .and_then(|(c, promise)| promise.relative_error(c.granted_ms));
            if let Some(error) = error {
                state.metrics.record_eta_error(error);
            }
            // The pass lives as long as the session, never longer than the edge accepts.
            let ttl = (session_end_ms.saturating_sub(now) / 1000)
                .clamp(1, state.wire.max_pass_lifetime_seconds);
            let claims = Claims::new(&event, &visitor, now / 1000, now / 1000 + ttl);
            let pass = state.keys.mint(TokenKind::Pass, &claims).map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string())
            })?;
            let body = Placement {
                pass: Some(pass.clone()),
                pass_expires_at: Some(now / 1000 + ttl),
                admitted_at_ms: claimed_now.map(|c| c.granted_ms),
                ..Placement::other(&visitor, "admitted", waiting)
            };
            let mut response = no_store(Json(body).into_response());
            let name = &state.wire.pass_cookie;
            set_cookie(&mut response, name, &pass, ttl, state.cookie_secure);
            Ok(response)
        }
    }
}

async fn leave(
    State(state): State<Arc<AppState>>,
    Path(event): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult {
    idempotent(&state, &event, &headers, "leave", &body, || {
        leave_now(&state, &event, &headers)
    })
    .await
}

async fn leave_now(state: &AppState, event: &str, headers: &HeaderMap) -> AppResult {
    checked_event(event)?;
    let visitor = require_ticket(state, headers, event)?.visitor;
    limit_visitor(state, &visitor)?;
    let left = state.store.leave(event, &visitor).await?;
    Ok(no_store(
        Json(json!({"visitor": visitor, "left": left})).into_response(),
    ))
}

fn public_status(stats: &crate::store::Stats, now_s: u64) -> &'static str {
    match &stats.config {
        Some(c) if now_s >= c.closes_at => "closed",
        Some(c) if now_s < c.opens_at => "scheduled",
        _ if stats.paused => "paused",
        _ => "open",
    }
}

async fn public_state(State(state): State<Arc<AppState>>, Path(event): Path<String>) -> AppResult {
    checked_event(&event)?;
    let stats =
        state.store.stats(&event).await?.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "EVENT_NOT_FOUND", "No such event.")
        })?;
    Ok(Json(json!({
        "event": event, "state": public_status(&stats, now_ms() / 1000),
        "waiting": stats.waiting, "admission_rate": stats.admission_rate,
    }))
    .into_response())
}

async fn configure_event(
    State(state): State<Arc<AppState>>,
    Path(event): Path<String>,
    body: Bytes,
) -> AppResult {
    checked_event(&event)?;
    let config: EventConfig = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "BAD_JSON",
            format!("Event configuration: {e}"),
        )
    })?;
    let mut problems = config.problems();
    let longest = state.wire.max_pass_lifetime_seconds;
    if config.session_seconds > longest {
        problems.push(format!(
            "session_seconds: at most {longest} (max_pass_lifetime_seconds: a pass lives as long as the session, and the edge refuses longer ones)"
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "BAD_CONFIG",
            problems.join("; "),
        ));
    }
    state.store.configure(&event, &config).await?;
    tracing::info!(event, ?config, "event configured");
    Ok(Json(json!({"event": event, "config": config})).into_response())
}

async fn set_paused(state: &AppState, event: &str, paused: bool) -> AppResult {
    checked_event(event)?;
    if !state.store.set_paused(event, paused).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "EVENT_NOT_FOUND",
            "No such event.",
        ));
    }
    tracing::info!(event, paused, "event pause state changed");
    Ok(Json(json!({"event": event, "paused": paused})).into_response())
}

async fn pause(State(state): State<Arc<AppState>>, Path(event): Path<String>) -> AppResult {
    set_paused(&state, &event, true).await
}

async fn resume(State(state): State<Arc<AppState>>, Path(event): Path<String>) -> AppResult {
    set_paused(&state, &event, false).await
}

async fn stats(State(state): State<Arc<AppState>>, Path(event): Path<String>) -> AppResult {
    checked_event(&event)?;
    let stats =
        state.store.stats(&event).await?.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "EVENT_NOT_FOUND", "No such event.")
        })?;
    let mut body = serde_json::to_value(&stats).unwrap_or_default();
    body["state"] = json!(public_status(&stats, now_ms() / 1000));
    Ok(no_store(Json(body).into_response()))
}

async fn ready(State(state): State<Arc<AppState>>) -> AppResult {
    state.store.ping().await?;
    Ok("ready".into_response())
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut text = state.metrics.render();
    text.push_str(&format!(
        "# TYPE wr_in_flight_cap gauge\nwr_in_flight_cap{{cap=\"join\"}} {}\nwr_in_flight_cap{{cap=\"poll\"}} {}\n",
        state.join_cap.cap(),
        state.poll_cap.cap()
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
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
