//! A crowd through the whole stack (Envoy with the filter, origin-queue, Redis Cluster,
//! demo backend): 2,000 visitors arrive, poll and, once admitted, open the protected
//! page with their pass. The backend must never see a request without a valid pass'
//! identity, never more new visitors than the admission rate (+ burst) allows, and the
//! queue must grant in arrival order.

use std::time::Duration;

use wr_tests::backend_log::{
    busiest_window, first_arrival_by_visitor, first_arrivals, order_violations, requests_under,
};

use wr_tests::processes::Stack;
use wr_tests::sale::{run, Plan};

const RATE: f64 = 100.0;

#[test]
fn a_crowd_through_the_edge() {
    // Everybody comes from 127.0.0.1 here: lift the per-client limits for the test.
    let stack = Stack::up_with(&[
        ("WR_EDGE_CLIENT_RATE_LIMIT", "100000:100000"),
        ("WR_CLIENT_RATE_LIMIT", "100000:100000"),
    ]);
    let plan = Plan {
        event: "demo".into(),
        visitors: 2000,
        arrival_window: Duration::from_secs(8),
        rate_before: RATE,
        rate_after: RATE,
        change_at_share: 2.0,
        limit_at_share: None,
        session_seconds: 600,
        start_paused: false,
        abandon_every: 0,
        abandon_seconds: 60,
        admin_token: stack.admin_token.clone(),
        admin_addr: stack.queue,
        protected_path: Some("/reserve/seat".into()),
        deadline: Duration::from_secs(120),
    };
    let report = run(stack.edge, &plan);
    eprintln!("{report:?}");
    assert_eq!(report.admitted, 2000, "{report:?}");
    assert_eq!(report.fifo_inversions, 0);

    let protected = requests_under(stack.backend, "/reserve");
    assert_eq!(protected.len(), 2000);
    assert!(
        protected
            .iter()
            .all(|r| r["visitor"].is_string() && r["event"] == "demo"),
        "a request without identity reached the backend"
    );
    // FIFO at the door: visitors poll on their own, so one who was ahead may come in up
    // to one poll interval (about 1 s near the head of the line) after one who was
    // behind, but never later than that, once this test's own client lateness (four
    // threads polling 2,000 visitors on a busy machine) is taken out.
    let first = first_arrival_by_visitor(&protected);
    let order: Vec<(String, u64)> = report
        .admitted_in_arrival_order
        .iter()
        .map(|a| (a.id.clone(), a.client_late_ms))
        .collect();
    let late = order_violations(&order, &first, 2_000);
    assert_eq!(
        late, 0,
        "{late} visitors entered more than 2 s after someone behind them"
    );
    let times = first_arrivals(&protected);
    assert_eq!(times.len(), 2000, "every visitor entered exactly once");
    // New visitors per 5 s window: at most RATE * (5 + 2 s of polling lag) + burst.
    let limit = (RATE * (5.0 + 2.0) + 1.0) as usize;
    let busiest = busiest_window(&times, 5000);
    assert!(
        busiest <= limit,
        "{busiest} new visitors in 5 s (limit {limit})"
    );
    eprintln!("busiest 5 s window: {busiest} new visitors (rate {RATE}/s)");
}
