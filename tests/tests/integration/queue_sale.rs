//! A small simulated sale through origin-queue on a real Redis Cluster: strict FIFO,
//! the configured rate (changed half-way), abandonment, and the measured ETA accuracy.
//! The API is called in-process (the router, no port): the sale is the service's.

use std::time::Duration;

use wr_tests::in_process::InProcessRouter;
use wr_tests::processes::redis_cluster;
use wr_tests::sale::{run, Plan};

#[test]
fn a_sale_keeps_fifo_and_the_rate() {
    let q = &InProcessRouter::start(redis_cluster(), &[]);
    let plan = Plan {
        event: "t-sale".into(),
        visitors: 300,
        arrival_window: Duration::from_secs(3),
        rate_before: 20.0,
        rate_after: 40.0,
        change_at_share: 0.4,
        limit_at_share: None,
        session_seconds: 600,
        start_paused: false,
        abandon_every: 10,
        abandon_seconds: 5,
        admin_token: wr_tests::processes::ADMIN_TOKEN.into(),
        admin_addr: q,
        protected_path: None,
        deadline: Duration::from_secs(60),
    };
    let r = run(q, &plan);
    eprintln!("{r:?}");
    assert_eq!(r.fifo_inversions, 0);
    assert_eq!(
        r.admitted,
        r.joined - r.abandoned,
        "everybody who kept polling got in: {r:?}"
    );
    let (before, after) = r.observed_rates;
    assert!(
        (15.0..=22.0).contains(&before),
        "rate before the change: {before:.1}/s (configured 20)"
    );
    assert!(
        (30.0..=42.0).contains(&after),
        "rate after the change: {after:.1}/s (configured 40)"
    );
    // Every claimed admission scored the ETA its ticket carried from the join.
    let metrics = wr_tests::http::Target::get(&q, "/metrics", &[]).unwrap();
    let scored = String::from_utf8_lossy(&metrics.body)
        .lines()
        .find_map(|l| l.strip_prefix("wr_eta_relative_error_count "))
        .and_then(|v| v.trim().parse::<usize>().ok());
    assert_eq!(scored, Some(r.admitted), "ETA errors recorded");
}
