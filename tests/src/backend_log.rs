//! Reading the demo backend's request log: what got past the edge, and how fast new
//! visitors arrived.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::Value;

use crate::http;

/// Every request the backend recorded whose path starts with `prefix`.
pub fn requests_under(backend: SocketAddr, prefix: &str) -> Vec<Value> {
    let log = http::get(backend, "/__demo/requests", &[])
        .expect("backend log")
        .json();
    log.as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap_or("").starts_with(prefix))
        .collect()
}

/// When each visitor first reached the backend (unix ms), by visitor id.
pub fn first_arrival_by_visitor(requests: &[Value]) -> BTreeMap<String, u64> {
    let mut first: BTreeMap<String, u64> = BTreeMap::new();
    for r in requests {
        if let (Some(visitor), Some(at)) = (r["visitor"].as_str(), r["at_ms"].as_u64()) {
            let t = first.entry(visitor.to_owned()).or_insert(at);
            *t = (*t).min(at);
        }
    }
    first
}

/// Visitors (given in queue order, each with how late its own client was: see
/// [`crate::sale::Admitted::client_late_ms`]) who reached the backend more than
/// `lag_ms` plus that lateness after someone who was behind them in line. A client
/// that polls late comes in late through no fault of the queue's; only the rest is
/// an overtaking.
pub fn order_violations(
    queue_order: &[(String, u64)],
    first: &BTreeMap<String, u64>,
    lag_ms: u64,
) -> usize {
    let mut violations = 0;
    let mut earliest_behind = u64::MAX;
    for (visitor, client_late_ms) in queue_order.iter().rev() {
        let Some(&at) = first.get(visitor) else {
            continue;
        };
        if at > earliest_behind.saturating_add(lag_ms + client_late_ms) {
            violations += 1;
        }
        earliest_behind = earliest_behind.min(at);
    }
    violations
}

/// When each visitor first reached the backend (unix ms), sorted.
pub fn first_arrivals(requests: &[Value]) -> Vec<u64> {
    let mut times: Vec<u64> = first_arrival_by_visitor(requests).into_values().collect();
    times.sort_unstable();
    times
}

/// The most arrivals in any window of `window_ms`.
pub fn busiest_window(sorted_times: &[u64], window_ms: u64) -> usize {
    (0..sorted_times.len())
        .map(|i| {
            sorted_times[i..]
                .iter()
                .take_while(|t| **t < sorted_times[i] + window_ms)
                .count()
        })
        .max()
        .unwrap_or(0)
}
