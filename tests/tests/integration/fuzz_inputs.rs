//! Every fuzz target for a few seconds (`make fuzz` runs them longer): no input may
//! panic, and no input that is not a validly signed token may be accepted.

use std::time::Duration;

use wr_tests::fuzz::{queue_http_fixture, run, seed_from_env, targets, Budget};

/// The fewest inputs each target must see. The HTTP target runs about 300 a second on
/// a busy CI machine, so the run waits for the floor rather than stopping at the clock.
const MIN_EXECUTIONS: u64 = 1000;

#[test]
fn fuzzed_inputs_never_crash_and_never_pass_as_signed() {
    let seconds = std::env::var("WR_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed = seed_from_env();
    let (_queue, queue_http) = queue_http_fixture();
    for target in targets().iter().chain([&queue_http]) {
        let budget = Budget {
            time: Duration::from_secs(seconds),
            executions: MIN_EXECUTIONS,
        };
        let r = run(target, budget, seed);
        eprintln!("{r:?}");
        assert!(r.executions >= MIN_EXECUTIONS, "{r:?}");
        assert!(
            r.accepted > 0,
            "the seeds themselves must be accepted: {r:?}"
        );
        assert_eq!(
            (r.crashes, r.false_accepts),
            (0, 0),
            "{r:?}; inputs in target/fuzz-crashes/{}; replay with WR_FUZZ_SEED={}",
            r.target,
            r.seed
        );
    }
}
