//! The cluster connection, and its rebuild when Redis has failed every call for a while.
//!
//! The client refreshes its slot map on MOVED replies and on some connection errors,
//! but a master killed under load left it sending to the dead node for good (seen in
//! `make chaos`, scenario failover). So a connection that has failed every call for
//! [`REBUILD_AFTER_MS`] is replaced by a new one, which reads the slot map afresh from
//! the configured nodes; one rebuild at a time, in the background.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::cluster_async::ClusterConnection;

use super::{RedisTarget, StoreError};
use crate::clock::now_ms;

/// After Redis has failed every call for this long, the cluster connection is rebuilt
/// from the configured nodes (and not more often than this).
const REBUILD_AFTER_MS: u64 = 2_000;

/// The cluster connection, and when to replace it.
pub struct Link {
    target: RedisTarget,
    timeout: Duration,
    /// The runtime the connection's tasks run on (see `Store::connect`).
    runtime: tokio::runtime::Handle,
    conn: RwLock<ClusterConnection>,
    last_ok_ms: AtomicU64,
    last_rebuild_ms: AtomicU64,
    rebuilding: AtomicBool,
}

impl Link {
    /// Connects to `target` (bounded by `timeout` per attempt); the connection's tasks
    /// run on the current runtime.
    pub async fn connect(target: &RedisTarget, timeout: Duration) -> Result<Link, StoreError> {
        let conn = open(target, timeout).await?;
        Ok(Link {
            target: target.clone(),
            timeout,
            runtime: tokio::runtime::Handle::current(),
            conn: RwLock::new(conn),
            last_ok_ms: AtomicU64::new(now_ms()),
            last_rebuild_ms: AtomicU64::new(0),
            rebuilding: AtomicBool::new(false),
        })
    }

    /// The bound on every call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The runtime the connection lives on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// The current connection (a cheap clone sharing its pipeline).
    pub fn get(&self) -> ClusterConnection {
        self.conn.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A call succeeded.
    pub fn succeeded(&self) {
        self.last_ok_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// A call failed: rebuilds the connection in the background if every call has
    /// failed for [`REBUILD_AFTER_MS`] and no rebuild ran that recently.
    pub fn failed(self: &Arc<Self>) {
        let now = now_ms();
        let failing_for = now.saturating_sub(self.last_ok_ms.load(Ordering::Relaxed));
        let since_rebuild = now.saturating_sub(self.last_rebuild_ms.load(Ordering::Relaxed));
        if failing_for < REBUILD_AFTER_MS
            || since_rebuild < REBUILD_AFTER_MS
            || self.rebuilding.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.last_rebuild_ms.store(now, Ordering::Relaxed);
        let link = self.clone();
        self.runtime.spawn(async move {
            match open(&link.target, link.timeout).await {
                Ok(conn) => {
                    *link.conn.write().unwrap_or_else(|p| p.into_inner()) = conn;
                    tracing::warn!(
                        failing_ms = failing_for,
                        "Redis failed every call; rebuilt the cluster connection"
                    );
                }
                Err(e) => tracing::warn!(error = ?e, "rebuilding the Redis connection failed"),
            }
            link.rebuilding.store(false, Ordering::Release);
        });
    }
}

/// A new cluster connection (slot map read from the target's nodes), bounded by
/// `timeout` per attempt.
async fn open(target: &RedisTarget, timeout: Duration) -> Result<ClusterConnection, StoreError> {
    let client = target
        .builder()
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .retries(1)
        .build()
        .map_err(StoreError::unavailable)?;
    tokio::time::timeout(timeout * 4, client.get_async_connection())
        .await
        .map_err(|_| StoreError::unavailable("timed out connecting to Redis Cluster"))?
        .map_err(StoreError::unavailable)
}
