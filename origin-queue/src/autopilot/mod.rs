//! The autopilot: each event that asks for it (`autopilot` in its configuration) has
//! its admission rate moved toward the most the backend can take within a target, from
//! the backend's health as Envoy measures it.
//!
//! Every [`PERIOD`] this loop reads Envoy's statistics of the backend cluster
//! ([`signal`]), and for each event with the autopilot on, steps the control law
//! ([`law`]) and records the rate, the reason and the signal in the event's
//! configuration hash, where the admission step reads the rate. Nothing is added to any
//! visitor's request. With several origin-queue replicas, each reads and steps, and the
//! first to write a period's step wins (a compare-and-set in `autopilot.lua`); the
//! others' steps are dropped. Every change is logged, counted in `/metrics` and shown
//! in the event's stats.

pub mod law;
pub mod signal;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::store::{AutopilotWrite, Store};
use law::{Reading, Reason, State};
use signal::{Snapshot, Windows};

/// How often the autopilot steps (and reads Envoy).
pub const PERIOD: Duration = Duration::from_secs(2);
/// How long one Envoy may take to answer.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest statistics page read from one Envoy.
const MAX_PAGE_BYTES: usize = 4 << 20;

/// Where the autopilot reads the backend's health.
#[derive(Clone, Debug)]
pub struct Sources {
    /// Envoy admin addresses (`http://host:port`).
    pub envoys: Vec<String>,
    /// The backend's cluster name in their statistics.
    pub cluster: String,
}

/// Runs until `shutdown` changes.
pub async fn run(
    store: Store,
    metrics: Arc<Metrics>,
    sources: Sources,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = reqwest::Client::builder()
        .timeout(SCRAPE_TIMEOUT)
        .build()
        .unwrap_or_default();
    let mut windows = Windows::default();
    let mut interval = tokio::time::interval(PERIOD);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => return,
        }
        let snapshots = scrape(&client, &sources).await;
        let reading = windows.reading(snapshots);
        metrics.record_autopilot_signal(reading);
        let events = match store.events().await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "autopilot: cannot list events");
                continue;
            }
        };
        for event in events {
            if let Err(e) = steer(&store, &metrics, &event, reading).await {
                tracing::warn!(event, error = %e, "autopilot step failed");
            }
        }
    }
}

/// Reads every Envoy in turn (each within [`SCRAPE_TIMEOUT`]): (source, its snapshot
/// or `None`).
async fn scrape(client: &reqwest::Client, sources: &Sources) -> Vec<(String, Option<Snapshot>)> {
    let mut out = Vec::with_capacity(sources.envoys.len());
    for base in &sources.envoys {
        let url = format!("{base}/stats/prometheus");
        let text = async {
            let response = client.get(&url).send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            let bytes = response.bytes().await.ok()?;
            (bytes.len() <= MAX_PAGE_BYTES).then(|| String::from_utf8_lossy(&bytes).into_owned())
        }
        .await;
        let snapshot = text.and_then(|t| Snapshot::parse(&t, &sources.cluster));
        if snapshot.is_none() {
            tracing::debug!(source = %base, "autopilot: no statistics from this Envoy");
        }
        out.push((base.clone(), snapshot));
    }
    out
}

/// One step of `event`'s autopilot, if it has one and no replica stepped this period.
async fn steer(
    store: &Store,
    metrics: &Metrics,
    event: &str,
    reading: Reading,
) -> Result<(), crate::store::StoreError> {
    let Some(read) = store.autopilot_read(event).await? else {
        return Ok(());
    };
    let Some(config) = read.config.active_autopilot() else {
        metrics.forget_autopilot(event);
        return Ok(());
    };
    let now = now_ms();
    if now.saturating_sub(read.at_ms) < PERIOD.as_millis() as u64 * 4 / 5 {
        return Ok(()); // another replica stepped this period
    }
    let configured = read.config.rate_per_second;
    let state = match read.rate {
        Some(rate) => State {
            rate,
            changed_ms: read.changed_ms,
            decreased_ms: read.decreased_ms,
            last_requests: read.last_requests,
        },
        None => State::start(config, configured),
    };
    let (next, reason) = law::step(config, configured, state, reading, read.rate_binds, now);
    let signal = match reading {
        Reading::Fresh(s) => Some((s.p95_ms, s.error_share)),
        _ => None,
    };
    let written = store
        .autopilot_write(
            event,
            &AutopilotWrite {
                rate: next.rate,
                changed_ms: next.changed_ms,
                decreased_ms: next.decreased_ms,
                last_requests: next.last_requests,
                reason: reason.name(),
                signal,
                now_ms: now,
                read_at_ms: read.at_ms,
            },
        )
        .await?;
    if !written {
        return Ok(());
    }
    metrics.record_autopilot_step(event, next.rate, reason);
    if next.rate != state.rate {
        tracing::info!(
            event,
            from = state.rate,
            to = next.rate,
            reason = reason.name(),
            p95_ms = signal.map(|s| s.0),
            error_share = signal.map(|s| s.1),
            "autopilot changed the admission rate"
        );
    } else if reason == Reason::Fallback {
        tracing::warn!(
            event,
            rate = next.rate,
            "autopilot: no fresh signal from the backend's Envoys; holding at most the configured rate"
        );
    }
    Ok(())
}
