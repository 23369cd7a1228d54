//! A sale with and without backend session ends: how long until every seat is sold, and
//! how much of the places the backend offers are used by someone shopping.
//!
//! `cargo run -q --release -p wr-tools --bin sessions-sim`
//!
//! The model (stated in BENCHMARKS.md): 100,000 visitors in line at the opening, 10,000
//! seats, `max_active` 2,000 places, admission at up to 100/s, sessions of 600 s. An
//! admitted visitor shops for a time drawn from a log-normal distribution (median
//! 90 s, σ 0.6: a quarter take under 60 s, one in twenty over 240 s, capped at the
//! session). 70 % buy (while seats remain) at the end of their checkout; 30 % leave
//! without buying, closing the tab. Without session ends every place is held until the
//! session's timeout; with them, a buyer's place frees at the purchase (the backend's
//! answer carries the session-end header). Those who leave without buying hold their
//! place until the timeout either way (nothing tells the edge). Deterministic: one seed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use wr_tests::sim_random::SimRandom;

const VISITORS: usize = 100_000;
const SEATS: u64 = 10_000;
const MAX_ACTIVE: usize = 2_000;
const RATE: f64 = 100.0;
const SESSION_SECS: f64 = 600.0;
const MEDIAN_CHECKOUT_SECS: f64 = 90.0;
const SIGMA: f64 = 0.6;
const BUY_SHARE: f64 = 0.7;

/// What happens at a time (ms, for ordering).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Happening {
    /// A buyer completes a purchase.
    Purchase,
    /// A place frees (session ended by the backend, or timed out).
    Frees,
}

struct Outcome {
    sold_out_secs: f64,
    admitted: usize,
    /// Place-seconds held by someone still shopping, over place-seconds held.
    utilisation: f64,
}

fn run(session_ends: bool) -> Outcome {
    let mut random = SimRandom::new(0x5eed_1234_abcd_9876);
    let mut events: BinaryHeap<Reverse<(u64, Happening)>> = BinaryHeap::new();
    let (mut active, mut next, mut sold) = (0usize, 0usize, 0u64);
    let (mut shopping_secs, mut held_secs) = (0.0, 0.0);
    let mut tokens = 0.0;
    let step = 0.1;
    let mut t = 0.0_f64;
    loop {
        let now_ms = (t * 1000.0) as u64;
        while let Some(Reverse((at, _))) = events.peek() {
            if *at > now_ms {
                break;
            }
            let Some(Reverse((_, what))) = events.pop() else {
                break;
            };
            match what {
                Happening::Purchase => sold += 1,
                Happening::Frees => active -= 1,
            }
        }
        if sold >= SEATS {
            break;
        }
        tokens = (tokens + RATE * step).min(RATE);
        while tokens >= 1.0 && active < MAX_ACTIVE && next < VISITORS {
            tokens -= 1.0;
            next += 1;
            active += 1;
            let checkout =
                (MEDIAN_CHECKOUT_SECS * (SIGMA * random.normal()).exp()).min(SESSION_SECS);
            let buys = random.uniform() < BUY_SHARE;
            let at = |secs: f64| now_ms + (secs * 1000.0) as u64;
            let frees = if buys {
                events.push(Reverse((at(checkout), Happening::Purchase)));
                if session_ends {
                    checkout
                } else {
                    SESSION_SECS
                }
            } else {
                SESSION_SECS
            };
            shopping_secs += checkout;
            held_secs += frees;
            events.push(Reverse((at(frees), Happening::Frees)));
        }
        if next >= VISITORS && events.is_empty() {
            break;
        }
        t += step;
    }
    Outcome {
        sold_out_secs: t,
        admitted: next,
        utilisation: shopping_secs / held_secs,
    }
}

fn main() {
    let without = run(false);
    let with = run(true);
    println!(
        "{VISITORS} visitors, {SEATS} seats, max_active {MAX_ACTIVE}, up to {RATE}/s, sessions {SESSION_SECS} s, checkout log-normal (median {MEDIAN_CHECKOUT_SECS} s, sigma {SIGMA}), {:.0} % buy",
        BUY_SHARE * 100.0
    );
    println!("| | sold out after | visitors admitted by then | places used by someone shopping |");
    println!("|---|---:|---:|---:|");
    for (name, o) in [
        ("sessions end at their timeout", &without),
        ("the backend ends sessions", &with),
    ] {
        println!(
            "| {name} | {:.0} s ({:.1} min) | {} | {:.0} % |",
            o.sold_out_secs,
            o.sold_out_secs / 60.0,
            o.admitted,
            o.utilisation * 100.0
        );
    }
    println!(
        "sold out {:.1}x sooner with backend session ends",
        without.sold_out_secs / with.sold_out_secs
    );
}
