//! The wait estimate under the conditions that broke its predecessor, measured phase by
//! phase: a full line at the start (everybody joins while admission is paused), a tenth
//! of the visitors walking away (spread through the line), the operator halving the
//! rate once half the line is through, and a last phase where `max_active` (sessions
//! ending) rather than the rate limits admission. origin-queue (release build) on a
//! local six-node Redis Cluster.
//!
//! `cargo run -q -p wr-tests --bin eta-sim` (part of `make bench`). Size with
//! WR_ETA_VISITORS (2000), WR_ETA_RATE (20/s, halved midway), WR_ETA_MAX_ACTIVE (50
//! for the last phase; sessions last 10 s, so about 5 admissions/s).
//!
//! Every estimate an admitted visitor was shown, at join and at each poll, is scored
//! against the wait that followed it (from the moment it was shown to the grant).

use std::time::Duration;

use wr_tests::sale::{env_number, run, simulation_queue, Plan, Shown};

/// One row of the report: how many estimates, the shares within ±10 % / ±20 % and
/// inside the range, and the median signed error ((estimate − actual) / actual).
fn row(what: &str, shown: &[&Shown]) -> (f64, f64) {
    let n = shown.len();
    if n == 0 {
        println!("| {what} | 0 | | | | |");
        return (f64::NAN, f64::NAN);
    }
    let mut signed: Vec<f64> = shown
        .iter()
        .map(|s| (s.eta_ms - s.actual_ms) / s.actual_ms)
        .collect();
    signed.sort_by(f64::total_cmp);
    let median = signed[n / 2];
    let share =
        |f: &dyn Fn(&Shown) -> bool| shown.iter().filter(|s| f(s)).count() as f64 / n as f64;
    let within10 = share(&|s| s.within(0.10));
    let within20 = share(&|s| s.within(0.20));
    let ranged: Vec<bool> = shown.iter().filter_map(|s| s.in_range()).collect();
    let coverage = ranged.iter().filter(|c| **c).count() as f64 / ranged.len().max(1) as f64;
    println!(
        "| {what} | {n} | {:.1} % | {:.1} % | {:.1} % | {:+.1} % |",
        within10 * 100.0,
        within20 * 100.0,
        coverage * 100.0,
        median * 100.0
    );
    (within20, coverage)
}

fn main() {
    let (cluster, q) = simulation_queue();
    let rate = env_number("WR_ETA_RATE", 20.0);
    let max_active = env_number("WR_ETA_MAX_ACTIVE", 50.0) as u64;
    let plan = Plan {
        event: "eta".into(),
        visitors: env_number("WR_ETA_VISITORS", 2000.0) as usize,
        arrival_window: Duration::from_secs(5),
        rate_before: rate,
        rate_after: rate / 2.0,
        change_at_share: 0.5,
        limit_at_share: Some((0.75, max_active)),
        session_seconds: 10,
        start_paused: true,
        abandon_every: 10,
        abandon_seconds: 10,
        admin_token: wr_tests::processes::ADMIN_TOKEN.into(),
        admin_addr: q.addr,
        protected_path: None,
        deadline: Duration::from_secs(900),
    };
    let r = run(q.addr, &plan);
    let (changed, limited) = r.changed_at_ms;
    let (changed, limited) = (changed.unwrap_or(u64::MAX), limited.unwrap_or(u64::MAX));
    println!(
        "eta-sim: {} visitors joined while paused, every {}th walks away; rate {}/s, halved \
         when half were admitted; max_active {} (10 s sessions) from three quarters on",
        plan.visitors, plan.abandon_every, rate, max_active
    );
    println!(
        "joined / admitted / walked away: {} / {} / {}; FIFO inversions: {}; admitted/s \
         before / after the halving: {:.1} / {:.1}\n",
        r.joined,
        r.admitted,
        r.abandoned,
        r.fifo_inversions,
        r.observed_rates.0,
        r.observed_rates.1
    );
    println!(
        "| estimates | n | within ±10 % | within ±20 % | range holds the wait | median error |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let at_join: Vec<&Shown> = r.shown.iter().filter(|s| s.at_join).collect();
    let no_change = |s: &&Shown| {
        let granted = s.at_ms as f64 + s.actual_ms;
        let spans = |t: u64| (s.at_ms as f64) < t as f64 && granted > t as f64;
        !spans(changed) && !spans(limited)
    };
    let join_long: Vec<&Shown> = at_join
        .iter()
        .copied()
        .filter(|s| s.actual_ms >= 30_000.0)
        .filter(no_change)
        .collect();
    let (goal_join, _) = row(
        "at join, waits ≥ 30 s with no change during the wait",
        &join_long,
    );
    let (_, goal_range) = row("at join, all", &at_join);
    // Polls whose wait ended before the next change (a later change is no error of
    // the estimate), with at least `min_ms` to go.
    let polls = |from: u64, to: u64, settle_ms: u64, min_ms: f64| -> Vec<&Shown> {
        r.shown
            .iter()
            .filter(|s| !s.at_join && s.at_ms >= from.saturating_add(settle_ms) && s.at_ms < to)
            .filter(|s| s.at_ms as f64 + s.actual_ms <= to as f64 && s.actual_ms >= min_ms)
            .collect()
    };
    row(
        "at polls, full rate (the bucket binds)",
        &polls(0, changed, 0, 0.0),
    );
    row("  of those, waits ≥ 5 s", &polls(0, changed, 0, 5_000.0));
    let just_after: Vec<&Shown> = r
        .shown
        .iter()
        .filter(|s| !s.at_join && s.at_ms >= changed && s.at_ms < changed.saturating_add(5_000))
        .collect();
    row("at polls, within 5 s after the halving", &just_after);
    let (goal_after, _) = row(
        "at polls, ≥ 5 s after the halving",
        &polls(changed, limited, 5_000, 0.0),
    );
    row(
        "  of those, waits ≥ 5 s",
        &polls(changed, limited, 5_000, 5_000.0),
    );
    row(
        "at polls, max_active binds (≥ 5 s after)",
        &polls(limited, u64::MAX, 5_000, 0.0),
    );
    row(
        "  of those, waits ≥ 5 s",
        &polls(limited, u64::MAX, 5_000, 5_000.0),
    );
    row("every estimate", &r.shown.iter().collect::<Vec<_>>());
    let mark = |ok: bool| if ok { "✔" } else { "✘" };
    println!(
        "\ngoals: at join (waits ≥ 30 s, no change) ≥ 97 % within ±20 %: {:.1} % {}; \
         ≥ 5 s after the halving ≥ 95 %: {:.1} % {}; range at join holds ≥ 90 %: {:.1} % {}",
        goal_join * 100.0,
        mark(goal_join >= 0.97),
        goal_after * 100.0,
        mark(goal_after >= 0.95),
        goal_range * 100.0,
        mark(goal_range >= 0.90)
    );
    println!("\ncommand: cargo run -q -p wr-tests --bin eta-sim");
    drop(q);
    cluster.stop();
}
