//! The admission loop: every tick, one atomic admission step per known event, whether
//! or not anybody is polling. Several origin-queue replicas may run it at once: the token
//! bucket lives in Redis, so together they never admit faster than configured. Each step
//! is told when this instance last failed to serve a poll (of any event), so that nobody
//! is swept as abandoned for polls that were not served.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::missed_polls::MissedPolls;
use crate::store::{Admission, Drew, Store, StoreError};

/// Event list refresh period: a new event starts admitting within this time.
const EVENTS_REFRESH: Duration = Duration::from_millis(500);

/// How long the opening draw may take: it blocks the event's Redis shard for about
/// 1.5 s per 100,000 entrants (BENCHMARKS.md), far longer than any other call.
const DRAW_BOUND: Duration = Duration::from_secs(30);

/// Runs the opening draw of `event` (whichever instance gets there first draws; the
/// others find it done).
async fn draw(store: &Store, event: &str) {
    let started = Instant::now();
    match store.draw(event, now_ms(), DRAW_BOUND).await {
        Ok(Some(Drew::Drawn { entrants })) => {
            let ms = started.elapsed().as_millis() as u64;
            tracing::info!(event, entrants, ms, "opening draw made");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(event, error = %e, "opening draw failed; retrying next tick"),
    }
}

/// Runs until `shutdown` changes.
pub async fn run(
    store: Store,
    metrics: Arc<Metrics>,
    missed_polls: Arc<MissedPolls>,
    tick: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut events: Vec<String> = Vec::new();
    let mut refreshed = Instant::now() - EVENTS_REFRESH;
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => return,
        }
        if refreshed.elapsed() >= EVENTS_REFRESH {
            match store.events().await {
                Ok(list) => events = list,
                Err(e) => tracing::warn!(error = ?e, "cannot list events"),
            }
            refreshed = Instant::now();
        }
        for event in &events {
            match store.admit(event, now_ms(), missed_polls.last_ms()).await {
                Ok(Admission::Stepped(step)) => metrics.record_step(event, step),
                Ok(Admission::DrawDue) => draw(&store, event).await,
                Ok(Admission::Gone) => {
                    if let Err(e) = store.unregister(event).await {
                        tracing::warn!(event, error = ?e, "cannot unregister expired event");
                    }
                }
                Err(StoreError::BadReply(e)) => {
                    tracing::error!(event, error = %e, "admission step: unexpected Redis reply (a bug)")
                }
                Err(e) => tracing::warn!(event, error = %e, "admission step failed"),
            }
        }
    }
}
