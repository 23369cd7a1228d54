//! The HTTP API: the routes (`routes`), and the state each handler is handed (`state`).
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
mod routes;
mod session_end;
mod state;
mod status;
mod tickets;

use axum::http::{header, HeaderValue};
use axum::response::Response;
use wr_pass::validate_event_id;

pub use admin::Admin;
pub use error::ApiError;
/// Page template reads that failed (served the last read or the built-in page instead).
pub use page::failed_reads as page_template_failed_reads;
pub use routes::router;
pub use state::{AppState, Gates, Identity, Queue};
pub use tickets::Tickets;

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024;

/// What a handler answers.
type AppResult = Result<Response, ApiError>;

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
