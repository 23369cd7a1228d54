//! What the join's proof of work costs each side, measured here:
//!
//! - a visitor: solve time in headless Chromium, in a Web Worker running the page's own
//!   solver (`edge-js/js/pow.js`), at several difficulties (median and 95th percentile
//!   over real challenges, each solved from nonce 0 as the page does);
//! - origin-queue: the check of one solution (the challenge's HMAC and one SHA-256);
//! - an attacker: hashes per second of one core with the native reference solver, and
//!   so joins per second per core at each difficulty.
//!
//! `cargo run --release -p wr-tools --bin pow-bench [-- RUNS]` prints Markdown tables.
//! Needs chromium and chromedriver (`scripts/install-deps`).

use std::time::{Duration, Instant};

use serde_json::json;
use wr_pass::pow::{solve, Challenge, Solution, SALT_BYTES};
use wr_pass::{KeyRing, TokenKind, Validity};
use wr_tests::browser::Browser;
use wr_tests::fixtures::{keys, now};

const DIFFICULTIES: [u8; 5] = [12, 16, 18, 20, 22];

fn challenge(ring: &KeyRing, difficulty: u8, i: u64) -> String {
    let mut salt = [0u8; SALT_BYTES];
    salt[..8].copy_from_slice(&i.to_be_bytes());
    salt[8] = difficulty;
    let claims = Challenge { difficulty, salt }.claims("sale", "visitor-id-0123456789ab", now());
    ring.mint(TokenKind::Challenge, &claims).unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Solve times in ms of `runs` challenges at `difficulty`, in a worker of the page, and
/// the hashes they took.
fn browser_times(browser: &Browser, ring: &KeyRing, difficulty: u8, runs: u64) -> (Vec<f64>, u64) {
    let solver =
        include_str!("../../../edge-js/js/pow.js").replace("\nexport function ", "\nfunction ");
    let mut times = Vec::new();
    let mut hashes = 0;
    for i in 0..runs {
        let c = challenge(ring, difficulty, 1_000 + i);
        let start = json!({"solver": solver, "challenge": c, "difficulty": difficulty});
        let script = format!(
            "const a = {start}; window.__r = null; \
             const src = a.solver + \"\\nself.onmessage = (m) => {{ const t0 = performance.now(); const s = solveChallenge(m.data.challenge, m.data.difficulty); self.postMessage({{ s, ms: performance.now() - t0 }}); }};\"; \
             const w = new Worker(URL.createObjectURL(new Blob([src], {{ type: 'text/javascript' }}))); \
             w.onmessage = (m) => {{ window.__r = m.data; w.terminate(); }}; \
             w.postMessage({{ challenge: a.challenge, difficulty: a.difficulty }}); return true;"
        );
        browser.eval(&script).expect("start the worker");
        let done = browser
            .wait_for("return window.__r", Duration::from_secs(300))
            .expect("the worker solves");
        let solution = done["s"].as_str().unwrap_or_default();
        assert!(
            Solution::parse(solution).is_some_and(|s| s.work() >= u32::from(difficulty)),
            "the browser's solution is not one"
        );
        times.push(done["ms"].as_f64().unwrap_or_default());
        hashes += solution
            .rsplit(':')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
    }
    (times, hashes)
}

fn main() {
    let runs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let ring = keys();

    // origin-queue's check of one solution.
    let solved = solve(&challenge(&ring, 12, 1), 12);
    let checks = 200_000;
    let started = Instant::now();
    for _ in 0..checks {
        let s = Solution::parse(std::hint::black_box(&solved)).unwrap();
        let claims = ring
            .verify(
                TokenKind::Challenge,
                s.challenge.as_bytes(),
                Validity::at(now(), 30),
                Some("sale"),
            )
            .unwrap();
        assert!(Challenge::from_claims(&claims).is_some() && s.work() >= 12);
    }
    let check_us = started.elapsed().as_secs_f64() * 1e6 / checks as f64;

    // An attacker's core: the native solver, from nonce 0, over many challenges.
    let started = Instant::now();
    let mut hashes = 0u64;
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(10) {
        let s = solve(&challenge(&ring, 18, i), 18);
        hashes += s.rsplit(':').next().unwrap().parse::<u64>().unwrap() + 1;
        i += 1;
    }
    let native_rate = hashes as f64 / started.elapsed().as_secs_f64();

    let browser = Browser::start().expect("chromium and chromedriver");
    browser.goto("data:text/html,<title>pow</title>").unwrap();
    println!("| difficulty | expected hashes | Chromium worker: median | p95 | runs | Chromium hashes/s | expected solve in Chromium | attacker, native, one core: joins/s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for difficulty in DIFFICULTIES {
        let n = if difficulty >= 22 {
            runs.div_ceil(2)
        } else {
            runs
        };
        let (mut times, hashes) = browser_times(&browser, &ring, difficulty, n);
        let rate = hashes as f64 / (times.iter().sum::<f64>() / 1000.0);
        times.sort_by(f64::total_cmp);
        let expected = 2f64.powi(i32::from(difficulty));
        println!(
            "| {difficulty} | {expected:.0} | {:.0} ms | {:.0} ms | {n} | {:.0} k | {:.0} ms | {:.1} |",
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            rate / 1000.0,
            expected / rate * 1000.0,
            native_rate / expected
        );
    }
    println!();
    println!("origin-queue's check of one solution: {check_us:.2} µs (HMAC of the challenge and one SHA-256; {checks} checks)");
    println!(
        "native reference solver: {:.2} M hashes/s on one core",
        native_rate / 1e6
    );
}
