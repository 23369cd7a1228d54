//! The queue's data in Redis Cluster.
//!
//! One file per Lua script, beside its `.lua` (the shape of mini-redis's `cmd/*`): each
//! owns its key list, its arguments and the reading of its reply. `event.lua` and
//! `seen.lua` are preludes the scripts share: the rules read from an event's
//! configuration, and the ring of who is still polling.
//!
//! All keys of one event share the hash tag `{wr:<event>}` (see `keys`), so every
//! multi-key change is one Lua script in one slot. Scripts are sent by SHA (see
//! `script`). Every call is bounded by the configured timeout; Redis trouble is
//! [`StoreError::Unavailable`], which the API turns into `503` + `Retry-After`. No KEYS
//! or SCAN anywhere; every key carries an expiry renewed by activity
//! ([`KEY_TTL_SECS`]).

mod admit;
mod autopilot;
mod configure;
mod draw;
mod end_session;
mod event_config;
mod events;
mod group_wait;
mod idempotency;
mod join;
mod keys;
mod leave;
mod link;
mod page_template;
mod pause;
mod replication;
mod reply;
mod revoke;
mod script;
mod stats;
mod status;
mod target;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::FromRedisValue;

pub use admit::{Admission, Step};
pub use autopilot::{AutopilotRead, AutopilotWrite};
pub use draw::{DrawRecord, Drew, DRAW_CHUNK, MAX_ORDER_PAGE};
pub use end_session::SessionEnd;
pub use event_config::{AutopilotConfig, EventConfig, Phase, Prequeue, ProofOfWork, QueueMode};
pub use idempotency::{IdemBegin, IDEMPOTENCY_TTL_SECS};
pub use join::{JoinRequest, Joined, Joins, Work};
pub use keys::KEY_TTL_SECS;
pub use leave::Left;
pub use reply::Guard;
pub use revoke::{AfterRevoke, Revoked};
pub use stats::{SessionsEnded, Stats};
pub use status::{Claimed, Standing, Statuses};
pub use target::RedisTarget;

use group_wait::GroupWait;
use link::Link;
use script::Invocation;

/// What went wrong with a Redis call.
#[derive(Debug, Clone)]
pub enum StoreError {
    /// Timeout, connection or cluster error: retry shortly.
    Unavailable(String),
    /// A script answered in a shape its Rust side does not expect: a bug, not an outage.
    BadReply(String),
}

impl StoreError {
    /// Redis could not answer in time or at all.
    pub fn unavailable(e: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable(e.to_string())
    }

    /// A malformed reply.
    pub fn bad_reply(e: impl std::fmt::Display) -> StoreError {
        StoreError::BadReply(e.to_string())
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "Redis unavailable: {why}"),
            StoreError::BadReply(why) => write!(f, "unexpected Redis reply: {why}"),
        }
    }
}

/// The Redis Cluster connection; cheap to clone.
#[derive(Clone)]
pub struct Store {
    link: Arc<Link>,
    /// Replicas that must confirm a new place before `join` returns (0: none).
    join_replicas: u64,
    /// Per slot: the group commit that shares one `WAIT` among joins.
    group_waits: Arc<Mutex<HashMap<u16, Arc<GroupWait>>>>,
}

impl Store {
    /// Connects to the cluster (bounded by `timeout` per attempt). The connection's
    /// tasks, and whatever [`Store::spawn`] starts, run on the runtime this is called
    /// on: `serve` calls it on a runtime of its own, so that Redis replies are read
    /// even while a flood of HTTP connections keeps the main runtime's queue long.
    pub async fn connect(target: &RedisTarget, timeout: Duration) -> Result<Store, StoreError> {
        Ok(Store {
            link: Arc::new(Link::connect(target, timeout).await?),
            join_replicas: 0,
            group_waits: Arc::default(),
        })
    }

    /// The bound on every Redis call.
    pub fn timeout(&self) -> Duration {
        self.link.timeout()
    }

    /// Runs `task` on the runtime the connection lives on (the one [`Store::connect`]
    /// was called on).
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.link.runtime().spawn(task)
    }

    /// Redis answers a PING.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.link.get();
        self.bounded(async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }

    /// Runs a script call, bounded; a reply not of type `T` is a [`StoreError::BadReply`].
    async fn eval<T: FromRedisValue>(&self, call: Invocation<'static>) -> Result<T, StoreError> {
        let mut c = self.link.get();
        let reply: redis::Value = self
            .bounded(async move { call.invoke_async(&mut c).await })
            .await?;
        redis::from_owned_redis_value(reply).map_err(StoreError::bad_reply)
    }

    /// Runs `f` within the timeout, and tells the link whether Redis answered.
    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        self.bounded_by(self.timeout(), f).await
    }

    /// Runs `f` within `bound` (for the rare call that may take longer than the
    /// timeout), and tells the link whether Redis answered.
    async fn bounded_by<T>(
        &self,
        bound: Duration,
        f: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let result = match tokio::time::timeout(bound, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::unavailable(e)),
            Err(_) => Err(StoreError::unavailable("Redis call timed out")),
        };
        match &result {
            Ok(_) => self.link.succeeded(),
            Err(_) => self.link.failed(),
        }
        result
    }
}
