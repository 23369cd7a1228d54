//! The admission loop: every tick, one atomic admission step per known event, whether
//! or not anybody is polling. Several origin-queue replicas may run it at once: the token
//! bucket lives in Redis, so together they never admit faster than configured. Each step
//! is told when this instance last failed to serve a poll (of any event), so that nobody
//! is swept as abandoned for polls that were not served.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::clock::now_ms;
use crate::gates::missed_polls::MissedPolls;
use crate::metrics::Metrics;
use crate::store::{Admission, Drew, Store, StoreError};

/// Event list refresh period: a new event starts admitting within this time.
const EVENTS_REFRESH: Duration = Duration::from_millis(500);

/// Longest one tick spends on an opening draw before stepping the other events (the
/// draw goes on at the next tick; 300,000 entrants take about 60 chunks).
const DRAW_SLICE: Duration = Duration::from_secs(2);

/// Runs chunks of `event`'s opening draw for up to [`DRAW_SLICE`]. Every instance may
/// do so at once: chunks are atomic and the draw completes once. A failed chunk counts
/// as a failed admission step (`wr_admission_errors_total`): while the draw cannot run,
/// nobody is admitted.
async fn draw(store: &Store, metrics: &Metrics, event: &str) {
    let started = Instant::now();
    loop {
        match store.draw(event, now_ms()).await {
            Ok(Some(Drew::InProgress { .. })) if started.elapsed() < DRAW_SLICE => continue,
            Ok(Some(Drew::Drawn { entrants })) => {
                let ms = started.elapsed().as_millis() as u64;
                tracing::info!(event, entrants, ms, "opening draw completed");
            }
            Ok(_) => {}
            Err(e) => {
                metrics.record_step_error(event);
                tracing::warn!(event, error = %e, "opening draw chunk failed; retrying next tick")
            }
        }
        return;
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
                Ok(Admission::DrawDue) => draw(&store, &metrics, event).await,
                Ok(Admission::Gone) => {
                    if let Err(e) = store.unregister(event).await {
                        tracing::warn!(event, error = ?e, "cannot unregister expired event");
                    }
                }
                Err(e) => {
                    metrics.record_step_error(event);
                    match e {
                        StoreError::BadReply(e) => {
                            tracing::error!(event, error = %e, "admission step: unexpected Redis reply (a bug)")
                        }
                        e => tracing::warn!(event, error = %e, "admission step failed"),
                    }
                }
            }
        }
    }
}
