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

/// When each visitor first reached the backend (unix ms), sorted.
pub fn first_arrivals(requests: &[Value]) -> Vec<u64> {
    let mut first: BTreeMap<&str, u64> = BTreeMap::new();
    for r in requests {
        if let (Some(visitor), Some(at)) = (r["visitor"].as_str(), r["at_ms"].as_u64()) {
            let t = first.entry(visitor).or_insert(at);
            *t = (*t).min(at);
        }
    }
    let mut times: Vec<u64> = first.into_values().collect();
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
