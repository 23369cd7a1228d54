//! Durable joins: with `WR_JOIN_REPLICAS`, a new place is answered only once that many
//! replicas hold it (Redis `WAIT`, one shared by every join waiting at once; see
//! `group_wait`).

use std::sync::Arc;

use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};

use super::group_wait::GroupWait;
use super::keys::{cluster_slot, EventKey};
use super::{Store, StoreError};

impl Store {
    /// Requires `replicas` replicas to confirm each new place before a join returns
    /// (Redis `WAIT`, bounded by half the Redis timeout); 0 turns that off.
    pub fn with_join_replicas(mut self, replicas: u64) -> Store {
        self.join_replicas = replicas;
        self
    }

    /// Waits until the configured number of replicas hold every place this instance
    /// has written to `event`'s line (one `WAIT` shared by all joins waiting at once);
    /// unavailable if they do not confirm in time. Nothing to wait for without
    /// [`Store::with_join_replicas`].
    pub async fn confirm_placed(&self, event: &str) -> Result<(), StoreError> {
        if self.join_replicas == 0 {
            return Ok(());
        }
        let slot = cluster_slot(EventKey::Line.of(event).as_bytes());
        // Bounded as a whole: waiting for the WAIT in flight counts too.
        tokio::time::timeout(
            self.timeout(),
            self.group_wait(slot).confirm(|| self.replicated(slot)),
        )
        .await
        .map_err(|_| StoreError::unavailable("replicas did not confirm the join in time"))?
    }

    /// The group commit of `slot`'s master.
    fn group_wait(&self, slot: u16) -> Arc<GroupWait> {
        let mut groups = self.group_waits.lock().unwrap_or_else(|p| p.into_inner());
        groups.entry(slot).or_default().clone()
    }

    /// Waits until `self.join_replicas` replicas of the master serving `slot` hold
    /// every write this connection sent it; unavailable if they do not confirm in time.
    async fn replicated(&self, slot: u16) -> Result<(), StoreError> {
        // WAIT names no key: send it to the master of the slot, on the connection that
        // carried the join.
        let route = Route::new(slot, SlotAddr::Master);
        let wait_ms = (self.timeout().as_millis() / 2).max(1) as u64;
        let mut wait = redis::cmd("WAIT");
        wait.arg(self.join_replicas).arg(wait_ms);
        let mut c = self.link.get();
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
        let confirmed = self
            .bounded(async move { c.route_command(&wait, routing).await })
            .await?;
        match redis::from_redis_value::<u64>(&confirmed) {
            Ok(n) if n >= self.join_replicas => Ok(()),
            Ok(n) => Err(StoreError::unavailable(format!(
                "only {n} of {} replicas confirmed the join",
                self.join_replicas
            ))),
            Err(e) => Err(StoreError::bad_reply(format!("WAIT: {e}"))),
        }
    }
}
