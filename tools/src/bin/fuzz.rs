//! `make fuzz` (long runs): `cargo run -q -p wr-tools --bin fuzz -- [SECONDS] [TARGET…]`
//! fuzzes each target (default: all) for SECONDS (default 60) and prints executions,
//! crashes and false accepts. `WR_FUZZ_SEED` replays a run. Exits 1 if any target
//! crashed or accepted a forgery. `make test` runs the same targets briefly
//! (`tests/tests/integration/fuzz_inputs.rs`).

use std::time::Duration;

use wr_tests::fuzz::{queue_http_fixture, run, seed_from_env, targets, Budget};

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = match args.next() {
        None => 60,
        Some(s) => s.parse().unwrap_or_else(|_| {
            eprintln!("fuzz: SECONDS must be a whole number, got {s:?}");
            std::process::exit(2);
        }),
    };
    let wanted: Vec<String> = args.collect();
    let mut all = targets();
    // The HTTP target needs Redis Cluster and origin-queue: started only when asked for
    // (or when running every target), stopped at exit.
    let mut _queue = None;
    if wanted.is_empty() || wanted.iter().any(|w| w == "queue-http") {
        let (queue, target) = queue_http_fixture();
        _queue = Some(queue);
        all.push(target);
    }
    let unknown: Vec<&String> = wanted
        .iter()
        .filter(|w| all.iter().all(|t| t.name != w.as_str()))
        .collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = all.iter().map(|t| t.name).collect();
        eprintln!("fuzz: unknown target(s) {unknown:?}; targets: {names:?}");
        std::process::exit(2);
    }
    let seed = seed_from_env();
    let mut failed = false;
    println!("| target | executions | crashes | false accepts | accepted | seed |");
    println!("|---|---:|---:|---:|---:|---:|");
    for target in all
        .iter()
        .filter(|t| wanted.is_empty() || wanted.iter().any(|w| w == t.name))
    {
        let budget = Budget {
            time: Duration::from_secs(seconds),
            executions: 0,
        };
        let r = run(target, budget, seed);
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.target, r.executions, r.crashes, r.false_accepts, r.accepted, r.seed
        );
        failed |= r.crashes > 0 || r.false_accepts > 0;
    }
    println!("\ncommand: cargo run -q -p wr-tools --bin fuzz -- {seconds}; failing inputs in target/fuzz-crashes/");
    drop(_queue);
    if failed {
        std::process::exit(1);
    }
}
