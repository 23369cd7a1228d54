//! The wait estimate under the conditions that broke its predecessor, measured phase by
//! phase, in two sales on one origin-queue (release build) and a local six-node Redis
//! Cluster:
//!
//! * **A full line**: everybody joins while admission is paused, a tenth of the
//!   visitors walk away (spread through the line), the operator halves the rate once
//!   half the line is through, and in a last phase `max_active` (sessions ending)
//!   rather than the rate limits admission.
//! * **A line that forms while admission runs**: visitors arrive three times faster than
//!   they are admitted, a tenth of them walk away, and nothing changes. Every join is
//!   shown a bounded range here (a paused join's range has no upper end), so this is
//!   where the range at join is measured.
//!
//! `cargo run -q -p wr-tools --bin eta-sim` (part of `make bench`). Size with
//! WR_ETA_VISITORS (2000), WR_ETA_RATE (20/s, halved midway), WR_ETA_MAX_ACTIVE (50
//! for the last phase; sessions last 10 s, so about 5 admissions/s), WR_ETA_FLOW_VISITORS
//! (1800, arriving over 30 s at the same rate), WR_ETA_RUNS (1: the report of each run,
//! then the goals' medians over the runs).
//!
//! Every estimate an admitted visitor was shown, at join and at each poll, is scored
//! against the wait that followed it (from the moment it was shown to the grant).

use std::net::SocketAddr;
use std::time::Duration;

use wr_tests::sale::{env_number, run, simulation_queue, Plan, Report, Shown};

/// One row of the report: how many estimates, the shares within ±10 % / ±20 % and
/// inside the range, the median signed error ((estimate − actual) / actual), and the
/// 90th percentile of the error in the model's standard deviations (taken from the
/// range's high end; 1.645 where the range is as wide as it claims, more where it is
/// too narrow). Returns the share within ±20 % and the range's coverage.
fn row(what: &str, shown: &[&Shown]) -> (f64, f64) {
    let n = shown.len();
    if n == 0 {
        println!("| {what} | 0 | | | | | |");
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
    let mut in_sds: Vec<f64> = shown
        .iter()
        .filter_map(|s| {
            let sd = (s.range_ms?.1? - s.eta_ms) / 1.645;
            (sd > 0.0).then(|| (s.actual_ms - s.eta_ms).abs() / sd)
        })
        .collect();
    in_sds.sort_by(f64::total_cmp);
    let p90 = match in_sds.len() {
        0 => "".to_owned(),
        len => format!("{:.2}", in_sds[len * 9 / 10]),
    };
    println!(
        "| {what} | {n} | {:.1} % | {:.1} % | {:.1} % | {:+.1} % | {p90} |",
        within10 * 100.0,
        within20 * 100.0,
        coverage * 100.0,
        median * 100.0
    );
    (within20, coverage)
}

fn table_head() {
    println!(
        "| estimates | n | within ±10 % | within ±20 % | range holds the wait | median error \
         | p90 error / sd (1.645) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
}

fn plan(event: &str, admin_addr: SocketAddr, rate: f64) -> Plan {
    Plan {
        event: event.into(),
        visitors: 0,
        arrival_window: Duration::from_secs(5),
        rate_before: rate,
        rate_after: rate,
        change_at_share: f64::INFINITY,
        limit_at_share: None,
        session_seconds: 10,
        start_paused: false,
        abandon_every: 10,
        abandon_seconds: 10,
        admin_token: wr_tests::processes::ADMIN_TOKEN.into(),
        admin_addr,
        protected_path: None,
        deadline: Duration::from_secs(900),
    }
}

/// The estimates shown at join whose wait was ≥ 30 s, and the joins' estimates that
/// were shown a bounded range, both with no change during the wait.
fn join_goals<'a>(r: &'a Report, no_change: &dyn Fn(&Shown) -> bool) -> [Vec<&'a Shown>; 2] {
    let at_join = r.shown.iter().filter(|s| s.at_join && no_change(s));
    [
        at_join
            .clone()
            .filter(|s| s.actual_ms >= 30_000.0)
            .collect(),
        at_join
            .filter(|s| matches!(s.range_ms, Some((_, Some(_)))))
            .collect(),
    ]
}

/// The goals' figures of one run: at join (waits ≥ 30 s, no change) within ±20 %,
/// polls ≥ 5 s after the halving within ±20 %, the bounded range at join's coverage.
struct Goals {
    join: f64,
    after_change: f64,
    range_at_join: f64,
}

/// The full line: phase by phase.
fn full_line(addr: SocketAddr, rate: f64) -> (Vec<Shown>, f64) {
    let max_active = env_number("WR_ETA_MAX_ACTIVE", 50.0) as u64;
    let plan = Plan {
        visitors: env_number("WR_ETA_VISITORS", 2000.0) as usize,
        rate_after: rate / 2.0,
        change_at_share: 0.5,
        limit_at_share: Some((0.75, max_active)),
        start_paused: true,
        ..plan("eta", addr, rate)
    };
    let r = run(addr, &plan);
    let (changed, limited) = r.changed_at_ms;
    let (changed, limited) = (changed.unwrap_or(u64::MAX), limited.unwrap_or(u64::MAX));
    println!(
        "\n**A full line**: {} visitors joined while paused, every {}th walks away; rate {}/s, \
         halved when half were admitted; max_active {} (10 s sessions) from three quarters on",
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
    table_head();
    let no_change = |s: &Shown| {
        let granted = s.at_ms as f64 + s.actual_ms;
        let spans = |t: u64| (s.at_ms as f64) < t as f64 && granted > t as f64;
        !spans(changed) && !spans(limited)
    };
    let [join_long, _] = join_goals(&r, &no_change);
    row(
        "at join, waits ≥ 30 s with no change during the wait",
        &join_long,
    );
    let at_join: Vec<&Shown> = r.shown.iter().filter(|s| s.at_join).collect();
    row("at join, all (paused: no upper end)", &at_join);
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
    let (after_change, _) = row(
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
    let join_long = join_long.into_iter().copied().collect();
    (join_long, after_change)
}

/// The line that forms while admission runs.
fn forming_line(addr: SocketAddr, rate: f64) -> (Vec<Shown>, Vec<Shown>) {
    let visitors = env_number("WR_ETA_FLOW_VISITORS", 1800.0) as usize;
    let plan = Plan {
        visitors,
        arrival_window: Duration::from_secs(30),
        ..plan("eta-flow", addr, rate)
    };
    let r = run(addr, &plan);
    println!(
        "\n**A line that forms while admission runs**: {} visitors over {:?} ({:.0}/s), every \
         {}th walks away; rate {}/s throughout",
        plan.visitors,
        plan.arrival_window,
        plan.visitors as f64 / plan.arrival_window.as_secs_f64(),
        plan.abandon_every,
        rate
    );
    println!(
        "joined / admitted / walked away: {} / {} / {}; FIFO inversions: {}; admitted/s: {:.1}\n",
        r.joined, r.admitted, r.abandoned, r.fifo_inversions, r.observed_rates.0
    );
    table_head();
    let [join_long, join_ranged] = join_goals(&r, &|_| true);
    row("at join, waits ≥ 30 s", &join_long);
    row("at join, all", &join_ranged);
    let at_join_short: Vec<&Shown> = join_ranged
        .iter()
        .copied()
        .filter(|s| s.actual_ms < 10_000.0)
        .collect();
    row("  of those, waits < 10 s", &at_join_short);
    let polls: Vec<&Shown> = r.shown.iter().filter(|s| !s.at_join).collect();
    row("at polls", &polls);
    let polls_long: Vec<&Shown> = polls
        .iter()
        .copied()
        .filter(|s| s.actual_ms >= 5_000.0)
        .collect();
    row("  of those, waits ≥ 5 s", &polls_long);
    (
        join_long.into_iter().copied().collect(),
        join_ranged.into_iter().copied().collect(),
    )
}

/// The share of `shown` for which `f` holds.
fn share(shown: &[Shown], f: impl Fn(&Shown) -> bool) -> f64 {
    shown.iter().filter(|s| f(s)).count() as f64 / shown.len().max(1) as f64
}

fn one_run(addr: SocketAddr, rate: f64) -> Goals {
    let (mut join_long, after_change) = full_line(addr, rate);
    let (flow_long, join_ranged) = forming_line(addr, rate);
    join_long.extend(flow_long);
    Goals {
        join: share(&join_long, |s| s.within(0.20)),
        after_change,
        range_at_join: share(&join_ranged, |s| s.in_range() == Some(true)),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let (cluster, q) = simulation_queue();
    let rate = env_number("WR_ETA_RATE", 20.0);
    let runs = (env_number("WR_ETA_RUNS", 1.0) as usize).max(1);
    let mut goals = Vec::new();
    for run in 1..=runs {
        println!("\n### eta-sim run {run} of {runs}");
        goals.push(one_run(q.addr, rate));
    }
    let mark = |ok: bool| if ok { "✔" } else { "✘" };
    let list = |f: fn(&Goals) -> f64| {
        let values: Vec<f64> = goals.iter().map(f).collect();
        let each: Vec<String> = values.iter().map(|v| format!("{:.1}", v * 100.0)).collect();
        (median(values), each.join(" / "))
    };
    let (join, join_each) = list(|g| g.join);
    let (after, after_each) = list(|g| g.after_change);
    let (range, range_each) = list(|g| g.range_at_join);
    println!("\ngoals, median of {runs} run(s) (each run's figure in brackets):");
    println!(
        "- at join, waits ≥ 30 s with no change during the wait, ≥ 97 % within ±20 %: \
         {:.1} % ({join_each}) {}",
        join * 100.0,
        mark(join >= 0.97)
    );
    println!(
        "- at polls ≥ 5 s after the halving, ≥ 95 % within ±20 %: {:.1} % ({after_each}) {}",
        after * 100.0,
        mark(after >= 0.95)
    );
    println!(
        "- at join, the range (bounded: admission running) holds the wait for ≥ 90 %: \
         {:.1} % ({range_each}) {}",
        range * 100.0,
        mark(range >= 0.90)
    );
    println!("\ncommand: WR_ETA_RUNS={runs} cargo run -q -p wr-tools --bin eta-sim");
    drop(q);
    cluster.stop();
}
