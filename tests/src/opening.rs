//! A large pre-queue written straight through origin-queue's store (the same `join.lua`
//! the API calls, 1,000 visitors a call), for the draw's benchmark and failover tests:
//! 300,000 joins over HTTP would take minutes on this machine.

use std::time::Duration;

use origin_queue::store::{EventConfig, JoinRequest, QueueMode, RedisTarget, Store, Work};

/// Entrant `i`'s id: as long as origin-queue's own (22 characters).
pub fn entrant_id(i: usize) -> String {
    format!("entrant-{i:014}")
}

/// An event whose pre-queue is open from `prequeue_opens_at` (Unix s) and which opens
/// (and draws) at `opens_at`; nobody is admitted for a long time after.
pub fn prequeue_config(prequeue_opens_at: u64, opens_at: u64) -> EventConfig {
    EventConfig {
        rate_per_second: 0.01,
        burst: 1,
        max_active: 10,
        session_seconds: 60,
        claim_seconds: 30,
        abandon_seconds: 3600,
        opens_at,
        closes_at: opens_at + 86_400,
        prequeue_opens_at: Some(prequeue_opens_at),
        mode: QueueMode::Fifo,
        autopilot: None,
        proof_of_work: None,
    }
}

/// Connects to the cluster at `nodes` with a generous bound (the draw's tests run long
/// scripts).
pub async fn connect(nodes: &[String]) -> Store {
    let target = RedisTarget::from_nodes(nodes).expect("the cluster's nodes");
    Store::connect(&target, Duration::from_secs(5))
        .await
        .expect("connect to the Redis Cluster")
}

/// Joins entrants `0..n` to `event`'s pre-queue at `now_ms` (inside its window), in
/// calls of 1,000; panics if a join is not an entry in the draw.
pub async fn load_entrants(store: &Store, event: &str, n: usize, now_ms: u64) {
    let ids: Vec<String> = (0..n).map(entrant_id).collect();
    for chunk in ids.chunks(1_000) {
        let requests: Vec<JoinRequest> = chunk
            .iter()
            .map(|id| JoinRequest {
                visitor: id.clone(),
                work: Work::None,
            })
            .collect();
        let asked: Vec<&JoinRequest> = requests.iter().collect();
        let joins = store
            .joins(event, &asked, now_ms)
            .await
            .expect("join")
            .expect("the event exists");
        assert!(
            joins
                .joined
                .iter()
                .all(|j| matches!(j, origin_queue::store::Joined::InDraw { .. })),
            "every join is an entry in the draw"
        );
    }
}
