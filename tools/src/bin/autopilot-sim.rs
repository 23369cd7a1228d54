//! The autopilot against a simulated backend, beside fixed rates: how often the
//! backend's target holds, how many are admitted, how fast a capacity change is
//! followed. The law is origin-queue's own (`origin_queue::autopilot::law`), stepped
//! every 2 s as the service steps it; only the backend and the crowd are simulated.
//!
//! `cargo run -q --release -p wr-tools --bin autopilot-sim [-- CSV]` (CSV: where to
//! write the autopilot's run, one row per second, for `scripts/plot-autopilot`;
//! `WR_SIM_SEED` changes the measurement noise).
//!
//! The model (stated in BENCHMARKS.md):
//! - an endless line: admission is limited by the rate alone;
//! - each admitted visitor makes 10 requests over their first 30 s (browse, seat map,
//!   checkout), so the backend's load is 10 × the admission rate once steady;
//! - the backend serves `capacity` requests/s (1,000, halved at 300 s, restored at
//!   600 s, 900 s in all); its p95 response time is 50 ms / (1 − load/capacity) below
//!   capacity (250 ms at 80 %), and beyond it a backlog builds and adds its wait; the
//!   share of errors is the backlog's share of 5 s of capacity (timeouts);
//! - the target: p95 ≤ 250 ms, errors ≤ 1 %. Envoy's histogram is read with ±5 %
//!   noise every 2 s, over the last 2 s.

use std::collections::VecDeque;

use origin_queue::autopilot::law::{self, Reading, Signal, State};
use origin_queue::store::AutopilotConfig;
use wr_tests::sim_random::SimRandom;

/// Simulation step, seconds.
const DT: f64 = 0.1;
/// Length of the run, seconds.
const RUN_SECS: f64 = 900.0;
/// Requests per admitted visitor, over [`SPREAD_SECS`].
const REQUESTS_PER_VISITOR: f64 = 10.0;
const SPREAD_SECS: f64 = 30.0;
const TARGET_P95_MS: f64 = 250.0;
const BASE_MS: f64 = 50.0;

fn capacity_at(t: f64) -> f64 {
    if (300.0..600.0).contains(&t) {
        500.0
    } else {
        1_000.0
    }
}

/// The visitors/s that keep the backend at the target at capacity `c`: load 80 % of c.
fn best_rate_for(c: f64) -> f64 {
    0.8 * c / REQUESTS_PER_VISITOR
}

/// How the rate is chosen.
#[derive(Clone, Copy)]
enum Policy {
    Fixed(f64),
    Autopilot,
}

/// One run's figures.
struct Run {
    admitted: f64,
    target_kept: f64,
    /// The same, leaving out the 60 s after each capacity change.
    target_kept_steady: f64,
    follow_down_secs: Option<f64>,
    follow_up_secs: Option<f64>,
    rows: Vec<(f64, f64, f64, f64, f64)>,
}

fn simulate(policy: Policy) -> Run {
    let config = AutopilotConfig {
        enabled: true,
        target_p95_ms: TARGET_P95_MS as u32,
        max_error_share: 0.01,
        min_rate: 5.0,
        max_rate: 200.0,
    };
    let configured = 50.0;
    let mut state = State::start(&config, configured);
    let seed = std::env::var("WR_SIM_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut noise = SimRandom::new(seed);
    // Admissions in each step of the last SPREAD_SECS.
    let window = (SPREAD_SECS / DT) as usize;
    let mut recent: VecDeque<f64> = VecDeque::from(vec![0.0; window]);
    let mut in_window = 0.0;
    let (mut backlog, mut admitted, mut kept_steps) = (0.0_f64, 0.0, 0usize);
    let (mut steady_steps, mut steady_kept) = (0usize, 0usize);
    let mut p95_sum = (0.0, 0.0, 0usize, 0.0); // p95 summed, errors summed, steps, requests
    let mut rows = Vec::new();
    let (mut follow_down, mut follow_up) = (None, None);
    let steps = (RUN_SECS / DT) as usize;
    for i in 0..steps {
        let t = i as f64 * DT;
        let rate = match policy {
            Policy::Fixed(r) => r,
            Policy::Autopilot => state.rate,
        };
        let now_admitted = rate * DT;
        admitted += now_admitted;
        in_window += now_admitted - recent.pop_front().unwrap_or(0.0);
        recent.push_back(now_admitted);
        let load = in_window * REQUESTS_PER_VISITOR / SPREAD_SECS;
        let capacity = capacity_at(t);
        backlog = (backlog + (load - capacity) * DT).max(0.0);
        let rho = (load / capacity).min(0.98);
        let p95 = BASE_MS / (1.0 - rho) + backlog / capacity * 1000.0;
        let errors = (backlog / (capacity * 5.0)).min(1.0);
        let kept = p95 <= TARGET_P95_MS && errors <= 0.01;
        kept_steps += usize::from(kept);
        if !(300.0..360.0).contains(&t) && !(600.0..660.0).contains(&t) {
            steady_steps += 1;
            steady_kept += usize::from(kept);
        }
        p95_sum = (
            p95_sum.0 + p95,
            p95_sum.1 + errors,
            p95_sum.2 + 1,
            p95_sum.3 + load * DT,
        );
        let step_ms = (t * 1000.0).round() as u64;
        if step_ms % 2_000 == 0 && i > 0 {
            let (sum, errs, n, requests) = p95_sum;
            let jitter = 1.0 + (noise.uniform() - 0.5) * 0.1;
            let reading = Reading::Fresh(Signal {
                p95_ms: sum / n as f64 * jitter,
                error_share: errs / n as f64,
                requests: requests as u64,
            });
            p95_sum = (0.0, 0.0, 0, 0.0);
            let (next, _) = law::step(&config, configured, state, reading, true, step_ms);
            state = next;
        }
        let best = best_rate_for(capacity);
        if (300.0..600.0).contains(&t) && follow_down.is_none() && rate <= best * 1.15 {
            follow_down = Some(t - 300.0);
        }
        if t >= 600.0 && follow_up.is_none() && rate >= best * 0.85 {
            follow_up = Some(t - 600.0);
        }
        if step_ms % 1_000 == 0 {
            rows.push((t, rate, p95, load, capacity));
        }
    }
    Run {
        admitted,
        target_kept: kept_steps as f64 / steps as f64,
        target_kept_steady: steady_kept as f64 / steady_steps as f64,
        follow_down_secs: follow_down,
        follow_up_secs: follow_up,
        rows,
    }
}

fn main() {
    // The best fixed rate in hindsight: the most admitted with the target kept 95 % of
    // the time.
    let best_fixed = (1..=200)
        .map(f64::from)
        .map(|r| (r, simulate(Policy::Fixed(r))))
        .filter(|(_, run)| run.target_kept >= 0.95)
        .max_by(|a, b| a.1.admitted.total_cmp(&b.1.admitted))
        .map(|(r, run)| (r, run.admitted))
        .unwrap_or((0.0, 0.0));
    let mut runs = vec![("autopilot".to_owned(), simulate(Policy::Autopilot))];
    for (name, rate) in [
        ("fixed, too low", best_fixed.0 * 0.5),
        ("fixed, just right (best in hindsight)", best_fixed.0),
        ("fixed, too high", best_fixed.0 * 1.6),
    ] {
        runs.push((
            format!("{name}: {rate:.0}/s"),
            simulate(Policy::Fixed(rate)),
        ));
    }
    println!(
        "backend capacity 1000 req/s, 500 from 300 s to 600 s; target p95 <= {TARGET_P95_MS} ms, errors <= 1 %; 900 s"
    );
    println!("| policy | admitted | share of the best fixed rate's | target kept | target kept, leaving out 60 s after each change | followed the halving | followed the restoring |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let secs = |s: Option<f64>| s.map_or("never".to_owned(), |s| format!("{s:.0} s"));
    for (name, run) in &runs {
        println!(
            "| {name} | {:.0} | {:.0} % | {:.1} % | {:.1} % | {} | {} |",
            run.admitted,
            100.0 * run.admitted / best_fixed.1,
            100.0 * run.target_kept,
            100.0 * run.target_kept_steady,
            secs(run.follow_down_secs),
            secs(run.follow_up_secs),
        );
    }
    if let Some(path) = std::env::args().nth(1) {
        let mut csv = String::from("t_s,rate_per_s,p95_ms,load_rps,capacity_rps\n");
        for (t, rate, p95, load, capacity) in &runs[0].1.rows {
            csv.push_str(&format!(
                "{t:.0},{rate:.2},{p95:.1},{load:.1},{capacity:.0}\n"
            ));
        }
        std::fs::write(&path, csv).expect("write the CSV");
        eprintln!("wrote {path}");
    }
}
