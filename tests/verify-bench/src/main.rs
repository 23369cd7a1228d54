//! Native timing of the pass check: `verify-bench <token> <now> <iterations>` prints
//! the median nanoseconds per verification over five timed loops.

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [token, now, iterations] = args.as_slice() else {
        eprintln!("usage: verify-bench <token> <now> <iterations>");
        std::process::exit(2);
    };
    let (Ok(now), Ok(iterations)) = (now.parse::<u64>(), iterations.parse::<u32>()) else {
        eprintln!("verify-bench: <now> and <iterations> must be whole numbers");
        std::process::exit(2);
    };
    let mut timings: Vec<f64> = (0..5)
        .map(|_| {
            let started = Instant::now();
            let valid = verify_bench::verify_many(token.as_bytes(), now, iterations);
            if valid != iterations {
                eprintln!("verify-bench: only {valid} of {iterations} verifications passed");
                std::process::exit(1);
            }
            started.elapsed().as_nanos() as f64 / f64::from(iterations.max(1))
        })
        .collect();
    timings.sort_by(f64::total_cmp);
    println!("{:.1}", timings[2]);
}
