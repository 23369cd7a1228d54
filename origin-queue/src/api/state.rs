//! The state the handlers are handed: [`AppState`], by part, each part a handler's
//! `State` of its own.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRef;

use super::{checked_event, Admin, ApiError, Tickets};
use crate::batching::join_batch::JoinBatcher;
use crate::batching::status_batch::StatusBatcher;
use crate::console::History;
use crate::gates::in_flight::InFlight;
use crate::gates::limiter::Limiter;
use crate::gates::missed_polls::MissedPolls;
use crate::identity::jwt::JwtVerifier;
use crate::metrics::Metrics;
use crate::store::Store;

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
    pub(super) async fn stats_of(&self, event: &str) -> Result<crate::store::Stats, ApiError> {
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
