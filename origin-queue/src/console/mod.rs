//! The operator console's memory: every [`PERIOD`], a sample of each event's figures
//! (from Redis, the same for every instance), of this instance's own (the ETA's
//! accuracy, shed and refused requests) and of the edges' counters, kept for the last
//! 15 minutes ([`KEEP`]) so that a console opened mid-sale shows where the sale came
//! from. The page itself is `api/console`.

mod edge;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

pub use edge::EdgeCounters;

use crate::clock::now_ms;
use crate::metrics::{ConsoleFigures, Metrics};
use crate::store::{Stats, Store};

/// How often the console samples.
pub const PERIOD: Duration = Duration::from_secs(5);
/// Samples kept per event: 15 minutes.
pub const KEEP: usize = 180;

/// One moment of one event.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// When, unix ms.
    pub at_ms: u64,
    /// In line.
    pub waiting: u64,
    /// Admitted, pass not yet picked up.
    pub granted: u64,
    /// In session.
    pub active: u64,
    /// The cap on sessions (0: none).
    pub max_active: u64,
    /// Admitted since the event was created.
    pub admitted_total: u64,
    /// The admission rate in force (the autopilot's or the configured one).
    pub rate_in_force: f64,
    /// Paused by an operator.
    pub paused: bool,
    /// This instance's figures, cumulative.
    pub instance: ConsoleFigures,
    /// The edges' counters, summed over every Envoy read (none configured or none
    /// answered: absent).
    pub edge: Option<EdgeCounters>,
}

impl Sample {
    fn of(stats: &Stats, at_ms: u64, instance: ConsoleFigures, edge: Option<EdgeCounters>) -> Self {
        Sample {
            at_ms,
            waiting: stats.waiting,
            granted: stats.granted,
            active: stats.active,
            max_active: stats.config.max_active,
            admitted_total: stats.admitted_total,
            rate_in_force: stats.rate_in_force,
            paused: stats.paused,
            instance,
            edge,
        }
    }
}

/// The samples of every event, oldest first.
#[derive(Default)]
pub struct History(Mutex<HashMap<String, VecDeque<Sample>>>);

impl History {
    /// Adds a sample of `event`, forgetting the oldest beyond [`KEEP`].
    pub fn push(&self, event: &str, sample: Sample) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let samples = all.entry(event.to_owned()).or_default();
        if samples.len() == KEEP {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The samples of `event`, oldest first.
    pub fn of(&self, event: &str) -> Vec<Sample> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.get(event)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets the events not in `events` (deleted or expired).
    fn keep_only(&self, events: &[String]) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|event, _| events.contains(event));
    }
}

/// Samples every [`PERIOD`] until `shutdown` changes. Redis trouble skips a sample
/// (the chart shows the gap); it never stops the loop.
pub async fn run(
    store: Store,
    metrics: Arc<Metrics>,
    envoys: Vec<String>,
    history: Arc<History>,
    mut shutdown: watch::Receiver<bool>,
) {
    let edges = edge::Reader::new(envoys);
    let mut interval = tokio::time::interval(PERIOD);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => return,
        }
        let events = match store.events().await {
            Ok(events) => events,
            Err(e) => {
                tracing::debug!(error = %e, "console: cannot list events");
                continue;
            }
        };
        history.keep_only(&events);
        let edge = edges.read().await;
        let instance = metrics.console_figures();
        for event in events {
            let now = now_ms();
            match store.stats(&event, now).await {
                Ok(Some(stats)) => {
                    history.push(&event, Sample::of(&stats, now, instance, edge.clone()))
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(event, error = %e, "console: no sample"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: u64) -> Sample {
        Sample {
            at_ms,
            waiting: 0,
            granted: 0,
            active: 0,
            max_active: 0,
            admitted_total: 0,
            rate_in_force: 0.0,
            paused: false,
            instance: ConsoleFigures::default(),
            edge: None,
        }
    }

    #[test]
    fn fifteen_minutes_are_kept_oldest_first() {
        let history = History::default();
        for at in 0..(KEEP as u64 + 10) {
            history.push("demo", sample(at));
        }
        let kept = history.of("demo");
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept[0].at_ms, 10);
        assert_eq!(kept[KEEP - 1].at_ms, KEEP as u64 + 9);
        assert!(history.of("other").is_empty());
    }

    #[test]
    fn events_that_are_gone_are_forgotten() {
        let history = History::default();
        history.push("a", sample(1));
        history.push("b", sample(1));
        history.keep_only(&["b".to_owned()]);
        assert!(history.of("a").is_empty());
        assert_eq!(history.of("b").len(), 1);
    }
}
