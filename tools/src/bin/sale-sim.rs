//! A simulated sale on a local Redis Cluster and origin-queue (release build), with the
//! report the product promises: FIFO inversions, admitted vs configured rate, ETA accuracy.
//!
//! `cargo run -q -p wr-tools --bin sale-sim` (part of `make bench`). Size with
//! WR_SALE_VISITORS (3000), WR_SALE_WINDOW_SECS (30), WR_SALE_RATE (50, multiplied by
//! WR_SALE_RATE_CHANGE, default 2, once 40 % are admitted), WR_SALE_ABANDON_EVERY (10:
//! every 10th visitor walks away; 0: nobody). `WR_SALE_RATE_CHANGE=1
//! WR_SALE_ABANDON_EVERY=0` measures the estimate in a steady sale.

use std::time::Duration;

use wr_tests::sale::{env_number, run, simulation_queue, Plan};

fn main() {
    let (cluster, q) = simulation_queue();
    let rate = env_number("WR_SALE_RATE", 50.0);
    let plan = Plan {
        event: "sim".into(),
        visitors: env_number("WR_SALE_VISITORS", 3000.0) as usize,
        arrival_window: Duration::from_secs_f64(env_number("WR_SALE_WINDOW_SECS", 30.0)),
        rate_before: rate,
        rate_after: rate * env_number("WR_SALE_RATE_CHANGE", 2.0),
        change_at_share: 0.4,
        limit_at_share: None,
        session_seconds: 600,
        start_paused: false,
        abandon_every: env_number("WR_SALE_ABANDON_EVERY", 10.0) as usize,
        abandon_seconds: 10,
        admin_token: wr_tests::processes::ADMIN_TOKEN.into(),
        admin_addr: q.addr,
        protected_path: None,
        deadline: Duration::from_secs(600),
    };
    let r = run(q.addr, &plan);
    let walking = match plan.abandon_every {
        0 => "nobody walks away".to_owned(),
        n => format!("every {n}th walks away"),
    };
    println!(
        "simulated sale: {} visitors over {:?}, {walking}, rate {} then {} /s",
        plan.visitors, plan.arrival_window, plan.rate_before, plan.rate_after
    );
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| joined / admitted / walked away | {} / {} / {} |",
        r.joined, r.admitted, r.abandoned
    );
    println!("| FIFO inversions | {} |", r.fifo_inversions);
    println!(
        "| admitted/s before the change (configured {}) | {:.1} |",
        plan.rate_before, r.observed_rates.0
    );
    println!(
        "| admitted/s after the change (configured {}) | {:.1} |",
        plan.rate_after, r.observed_rates.1
    );
    println!(
        "| ETA at join within ±10 % / ±20 % of the actual wait | {:.0} % / {:.0} % |",
        r.eta_within.0 * 100.0,
        r.eta_within.1 * 100.0
    );
    println!(
        "| ETA mean absolute percentage error | {:.0} % |",
        r.eta_mape * 100.0
    );
    println!(
        "\ncommand: WR_SALE_RATE={} WR_SALE_RATE_CHANGE={} WR_SALE_ABANDON_EVERY={} cargo run -q -p wr-tools --bin sale-sim",
        plan.rate_before,
        plan.rate_after / plan.rate_before,
        plan.abandon_every
    );
    drop(q);
    cluster.stop();
}
