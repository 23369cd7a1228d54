//! The HTTP API: the routes, and the state each handler is handed.
//!
//! Handlers are thin and take only the parts of [`AppState`] they use (`State<Arc<Queue>>`,
//! `State<Arc<Tickets>>`, …). One file per route group; every error is an
//! [`ApiError`], rendered in one place.

mod admin;
mod bearer;
mod body_first;
mod client_ip;
mod console;
mod draw;
mod edge_check;
mod error;
mod event_state;
mod gate;
mod idempotent;
mod join;
mod leave;
mod ops;
mod page;
mod page_admin;
mod placement;
mod pow;
mod session_end;
mod status;
mod tickets;

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use wr_pass::validate_event_id;
use wr_pass::wire;

pub use admin::Admin;
pub use error::ApiError;
/// Page template reads that failed (served the last read or the built-in page instead).
pub use page::failed_reads as page_template_failed_reads;
pub use tickets::Tickets;

use crate::console::History;
use crate::in_flight::InFlight;
use crate::join_batch::JoinBatcher;
use crate::jwt::JwtVerifier;
use crate::limiter::Limiter;
use crate::metrics::Metrics;
use crate::missed_polls::MissedPolls;
use crate::status_batch::StatusBatcher;
use crate::store::Store;

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024;

/// What a handler answers.
type AppResult = Result<Response, ApiError>;

/// The queue in Redis, and the batchers in front of its hottest scripts.
pub struct Queue {
    /// Redis.
    pub store: Store,
    /// Joins, batched per event into one script call.
    pub joins: JoinBatcher,
    /// Status polls, batched per event into one script call.
    pub status_polls: StatusBatcher,
}

impl Queue {
    /// The live figures of `event`; 404 `EVENT_NOT_FOUND` if there is no such event.
    async fn stats_of(&self, event: &str) -> Result<crate::store::Stats, ApiError> {
        checked_event(event)?;
        let now = crate::clock::now_ms();
        self.store
            .stats(event, now)
            .await?
            .ok_or(ApiError::EventNotFound)
    }
}

/// What keeps the public API standing under a crowd: in-flight caps and rate limits.
pub struct Gates {
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
}

/// Optional user identity from a JWT (`None`: visitors are anonymous).
#[derive(Clone)]
pub struct Identity(pub Option<Arc<JwtVerifier>>);

/// Everything the handlers use, by part; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The queue in Redis.
    pub queue: Arc<Queue>,
    /// Tickets and passes.
    pub tickets: Arc<Tickets>,
    /// Caps and rate limits.
    pub gates: Arc<Gates>,
    /// Optional JWT identity.
    pub identity: Identity,
    /// The admin API's credentials.
    pub admin: Arc<Admin>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The operator console's samples.
    pub console: Arc<History>,
}

/// Lets a handler take one part of [`AppState`] as its `State`.
macro_rules! state_part {
    ($($field:ident: $part:ty),* $(,)?) => {$(
        impl FromRef<AppState> for $part {
            fn from_ref(state: &AppState) -> $part {
                state.$field.clone()
            }
        }
    )*};
}

state_part!(
    queue: Arc<Queue>,
    tickets: Arc<Tickets>,
    gates: Arc<Gates>,
    identity: Identity,
    admin: Arc<Admin>,
    metrics: Arc<Metrics>,
    console: Arc<History>,
);

/// The service's routes.
pub fn router(state: AppState) -> Router {
    let admin_route = |tail: &str| format!("{}events/{{event}}{tail}", wire::ADMIN_PREFIX);
    let event_route = |tail: &str| format!("{}{{event}}{tail}", wire::EVENTS_PREFIX);
    let admin = Router::new()
        .route(&admin_route(""), put(admin::configure_event))
        .route(&admin_route("/pause"), post(admin::pause))
        .route(&admin_route("/resume"), post(admin::resume))
        .route(&admin_route("/revoke"), post(admin::revoke))
        .route(&admin_route("/stats"), get(admin::stats))
        .route(
            &admin_route("/page"),
            put(page_admin::put_page)
                .get(page_admin::get_page)
                .delete(page_admin::delete_page),
        )
        .route(&admin_route("/console"), get(console::figures))
        .route(
            &format!("{}events", wire::ADMIN_PREFIX),
            get(console::events),
        )
        .route_layer(middleware::from_fn_with_state(
            state.admin.clone(),
            admin::require_admin,
        ));
    let joins = Router::new()
        .route(&event_route("/join"), post(join::join))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            gate::gate_joins,
        ));
    let polls = Router::new()
        .route(&event_route("/status"), get(status::status))
        .route(&event_route("/leave"), post(leave::leave))
        .route(&event_route(""), get(event_state::public_state))
        .route(&event_route("/draw"), get(draw::record))
        .route(&event_route("/draw/order"), get(draw::order))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            gate::gate_polls,
        ));
    let reports = Router::new()
        .route(
            &event_route(&format!("/{}", wire::SESSION_END_ROUTE)),
            post(session_end::end_session),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            gate::gate_reports,
        ));
    let page = format!("{}{{event}}", wire::WAITING_ROOM_PREFIX);
    Router::new()
        .merge(joins)
        .merge(polls)
        .merge(reports)
        .merge(
            // The page reads the operators' templates through its own cache.
            Router::new()
                .route(&page, get(page::waiting_room))
                .with_state(Arc::new(page::PageTemplates::new(
                    state.queue.store.clone(),
                ))),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .merge(admin)
        .route(
            &format!("{}console", wire::ADMIN_PREFIX),
            get(console::page),
        )
        .fallback(|| async { ApiError::NoRoute })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), gate::track))
        .with_state(state)
}

/// The event id of a route, checked.
fn checked_event(event: &str) -> Result<(), ApiError> {
    validate_event_id(event).map_err(|e| ApiError::BadEventId(e.to_string()))
}

/// Marks an answer as not to be cached.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
