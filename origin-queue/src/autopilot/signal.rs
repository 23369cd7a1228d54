//! The autopilot's signal: Envoy's own statistics of the backend cluster, read from
//! Envoy's admin port (`/stats/prometheus`) every [`super::PERIOD`], never on a visitor's
//! request.
//!
//! Envoy times every response of the backend cluster (`upstream_rq_time`, a histogram
//! in milliseconds) and counts responses by class (`upstream_rq_xx`). Both are
//! cumulative: each reading is compared with the previous one of the same Envoy, and the
//! difference is the window. Several Envoys (every edge replica) add up.
//!
//! A window is [`Reading::Missing`] when no Envoy answered, or an answer makes no sense
//! (a counter went backwards: Envoy restarted, and the next window starts from its new
//! counts), and [`Reading::Thin`] when it holds fewer than [`MIN_RESPONSES`] responses.

use std::collections::HashMap;

use super::law::{Reading, Signal};

/// Fewest responses in a window to judge the backend by.
pub const MIN_RESPONSES: u64 = 20;

/// One Envoy's cumulative figures for the cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// `le` bound (ms; `f64::INFINITY` for `+Inf`) → responses at or under it.
    buckets: Vec<(f64, f64)>,
    /// Responses of class 5.
    errors: f64,
    /// Responses of every class.
    responses: f64,
}

impl Snapshot {
    /// Reads `cluster`'s figures from Envoy's Prometheus text; `None` if the text has
    /// no response-time histogram for it.
    pub fn parse(text: &str, cluster: &str) -> Option<Snapshot> {
        let mut snapshot = Snapshot::default();
        let cluster_label = format!("envoy_cluster_name=\"{cluster}\"");
        for line in text.lines() {
            if line.starts_with('#') || !line.contains(&cluster_label) {
                continue;
            }
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            if series.starts_with("envoy_cluster_upstream_rq_time_bucket{") {
                let le = label(series, "le")?;
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                snapshot.buckets.push((bound, value));
            } else if series.starts_with("envoy_cluster_upstream_rq_xx{") {
                snapshot.responses += value;
                if label(series, "envoy_response_code_class") == Some("5") {
                    snapshot.errors += value;
                }
            }
        }
        if snapshot.buckets.is_empty() {
            return None;
        }
        snapshot.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(snapshot)
    }

    /// What happened between `earlier` and this snapshot; `None` if a count went
    /// backwards or the buckets differ (a restarted or reconfigured Envoy).
    fn since(&self, earlier: &Snapshot) -> Option<Snapshot> {
        if self.buckets.len() != earlier.buckets.len() {
            return None;
        }
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for ((bound, now), (was_bound, was)) in self.buckets.iter().zip(&earlier.buckets) {
            if bound != was_bound || now < was {
                return None;
            }
            buckets.push((*bound, now - was));
        }
        if self.errors < earlier.errors || self.responses < earlier.responses {
            return None;
        }
        Some(Snapshot {
            buckets,
            errors: self.errors - earlier.errors,
            responses: self.responses - earlier.responses,
        })
    }

    fn add(&mut self, other: &Snapshot) {
        if self.buckets.is_empty() {
            self.buckets = other.buckets.clone();
        } else {
            for ((_, mine), (_, theirs)) in self.buckets.iter_mut().zip(&other.buckets) {
                *mine += theirs;
            }
        }
        self.errors += other.errors;
        self.responses += other.responses;
    }

    /// The window's reading.
    fn reading(&self) -> Reading {
        let total = self.buckets.last().map_or(0.0, |b| b.1);
        if total < MIN_RESPONSES as f64 {
            return Reading::Thin;
        }
        let p95_ms = quantile(&self.buckets, 0.95);
        let error_share = if self.responses > 0.0 {
            self.errors / self.responses
        } else {
            0.0
        };
        if !p95_ms.is_finite() || !(0.0..=1.0).contains(&error_share) {
            return Reading::Missing;
        }
        Reading::Fresh(Signal {
            p95_ms,
            error_share,
            requests: total as u64,
        })
    }
}

/// The value of label `name` in a series (`name{a="1",b="2"}`).
fn label<'s>(series: &'s str, name: &str) -> Option<&'s str> {
    let start = series.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &series[start..];
    Some(&rest[..rest.find('"')?])
}

/// The `q` quantile of cumulative `buckets`, interpolated within its bucket (the
/// histogram's resolution); in the `+Inf` bucket, its lower bound.
fn quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().map_or(0.0, |b| b.1);
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return lower.0;
            }
            let within = count - lower.1;
            let share = if within > 0.0 {
                (rank - lower.1) / within
            } else {
                1.0
            };
            return lower.0 + share * (bound - lower.0);
        }
        lower = (bound, count);
    }
    lower.0
}

/// The previous snapshot of each Envoy, and the windows they make.
#[derive(Default)]
pub struct Windows {
    previous: HashMap<String, Snapshot>,
}

impl Windows {
    /// The reading of this round: `snapshots` holds, per Envoy, its snapshot or `None`
    /// if it did not answer (or had no histogram for the cluster).
    pub fn reading(&mut self, snapshots: Vec<(String, Option<Snapshot>)>) -> Reading {
        let mut window = Snapshot::default();
        let (mut answered, mut compared) = (false, false);
        for (source, snapshot) in snapshots {
            let Some(snapshot) = snapshot else {
                self.previous.remove(&source);
                continue;
            };
            answered = true;
            if let Some(delta) = self.previous.get(&source).and_then(|p| snapshot.since(p)) {
                window.add(&delta);
                compared = true;
            }
            self.previous.insert(source, snapshot);
        }
        match (answered, compared) {
            (false, _) => Reading::Missing,
            // The first answer of every Envoy (or a restart) is only a baseline.
            (true, false) => Reading::Thin,
            (true, true) => window.reading(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bucket_counts: [u64; 4], ok: u64, errors: u64) -> String {
        let bounds = ["50", "100", "250", "+Inf"];
        let mut out = String::from("# TYPE envoy_cluster_upstream_rq_time histogram\n");
        for (le, n) in bounds.iter().zip(bucket_counts) {
            out.push_str(&format!(
                "envoy_cluster_upstream_rq_time_bucket{{envoy_cluster_name=\"backend\",le=\"{le}\"}} {n}\n"
            ));
        }
        out.push_str(&format!("envoy_cluster_upstream_rq_xx{{envoy_response_code_class=\"2\",envoy_cluster_name=\"backend\"}} {ok}\n"));
        out.push_str(&format!("envoy_cluster_upstream_rq_xx{{envoy_response_code_class=\"5\",envoy_cluster_name=\"backend\"}} {errors}\n"));
        out.push_str("envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"origin_queue\",le=\"50\"} 999\n");
        out
    }

    fn snap(bucket_counts: [u64; 4], ok: u64, errors: u64) -> Option<Snapshot> {
        Snapshot::parse(&text(bucket_counts, ok, errors), "backend")
    }

    #[test]
    fn the_first_reading_is_a_baseline_and_the_next_a_window() {
        let mut w = Windows::default();
        let first = vec![("a".to_owned(), snap([10, 20, 30, 30], 30, 0))];
        assert_eq!(w.reading(first), Reading::Thin);
        let second = vec![("a".to_owned(), snap([10, 60, 130, 130], 120, 10))];
        let Reading::Fresh(s) = w.reading(second) else {
            panic!("no window");
        };
        assert_eq!(s.requests, 100);
        // Rank 95 of 100 falls in (100, 250]: 55 of the 60 in it.
        assert!(
            (s.p95_ms - (100.0 + 150.0 * 55.0 / 60.0)).abs() < 1e-9,
            "{s:?}"
        );
        assert!((s.error_share - 0.1).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn several_envoys_add_up() {
        let mut w = Windows::default();
        let round = |a, b| vec![("a".to_owned(), a), ("b".to_owned(), b)];
        w.reading(round(snap([0, 0, 0, 0], 0, 0), snap([0, 0, 0, 0], 0, 0)));
        let Reading::Fresh(s) = w.reading(round(
            snap([20, 20, 20, 20], 20, 0),
            snap([0, 0, 20, 20], 20, 0),
        )) else {
            panic!("no window");
        };
        assert_eq!(s.requests, 40);
    }

    #[test]
    fn nobody_answering_is_missing_and_a_restart_is_a_new_baseline() {
        let mut w = Windows::default();
        assert_eq!(w.reading(vec![("a".to_owned(), None)]), Reading::Missing);
        w.reading(vec![("a".to_owned(), snap([50, 50, 50, 50], 50, 0))]);
        let restarted = vec![("a".to_owned(), snap([1, 1, 1, 1], 1, 0))];
        assert_eq!(w.reading(restarted), Reading::Thin);
    }

    #[test]
    fn a_window_in_the_open_bucket_reads_its_lower_bound() {
        let buckets = [(50.0, 0.0), (250.0, 1.0), (f64::INFINITY, 100.0)];
        assert_eq!(quantile(&buckets, 0.95), 250.0);
    }

    #[test]
    fn text_without_the_cluster_is_no_snapshot() {
        assert_eq!(Snapshot::parse("# nothing\n", "backend"), None);
        assert_eq!(Snapshot::parse(&text([1, 1, 1, 1], 1, 0), "shop"), None);
    }
}
