//! `make bench` (edge part): the cost of the edge filter, measured as a ratio against
//! bare Envoy, a no-op wasm filter and Envoy's own filters, in the same run.
//!
//! Every Envoy answers every route with a `direct_response`, so no upstream is involved.
//! `wrk` (50 connections) drives each variant for `WR_BENCH_SECONDS` (5) per round,
//! `WR_BENCH_ROUNDS` (5) rounds, variants interleaved so machine noise hits all alike.
//! Two sets:
//!
//! - **1 worker**: each Envoy pinned to CPU 1, wrk (1 thread) to CPU 0;
//! - **2 workers**: Envoy with `--concurrency 2`, wrk with 2 threads, nothing pinned
//!   (on a 2-core machine wrk competes with the workers: this shows scaling, not peak).
//!
//! Reported per variant: median requests/s, p50/p99 latency, Envoy's CPU time per
//! request (user + system over the run, divided by responses: the cost of a request
//! whatever else the machine was doing), and ratios. Then the wasm module's size, the
//! time Envoy takes to start with the filter against without it (VM creation and
//! configuration on the main thread and every worker), and the pass check alone.
//!
//! `bench-edge --count` measures work instead of time: the instructions one request
//! costs the whole Envoy process under callgrind, the same run after run (see `count`).
//! `--count --cache` adds the first-level cache misses per request.
//!
//! `WR_BENCH_EXTRA_WASM=label=path[,label=path…]` adds other builds of the filter to the
//! 1-worker set (a baseline commit's, or one cut short at some stage), each admitted
//! with a valid pass in the same rounds: two builds compared side by side (in
//! `--count` too).

mod count;
mod measure;
mod native;
mod setup;
mod verify;

use std::process::Command;
use std::time::Instant;

use measure::{median, Load, Run};
use setup::{direct_response_bootstrap, Which};
use wr_tests::envoy::Envoy;
use wr_tests::fixtures::{env_number, filter_wasm, pass};

/// The cookie a variant sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cookie {
    None,
    Pass,
    Jwt,
    /// A different valid pass on every request, more than the pass cache holds: every
    /// request is a cache miss (an HMAC) and a new visitor bucket.
    DistinctPasses,
}

#[derive(Clone)]
struct Variant {
    name: &'static str,
    envoy: Which,
    path: &'static str,
    cookie: Cookie,
}

const fn variant(name: &'static str, envoy: Which, path: &'static str, cookie: Cookie) -> Variant {
    Variant {
        name,
        envoy,
        path,
        cookie,
    }
}

const BARE: Variant = variant(
    "bare Envoy (no filter)",
    Which::Bare,
    "/reserve",
    Cookie::Pass,
);
const FLOOR: Variant = variant(
    "no-op Rust wasm filter (floor)",
    Which::Floor,
    "/reserve",
    Cookie::Pass,
);
const ADMITTED: Variant = variant(
    "edge filter: valid pass, admitted",
    Which::Filter,
    "/reserve",
    Cookie::Pass,
);
const NATIVE: Variant = variant(
    "Envoy jwt_authn (HS256 cookie) + local_ratelimit",
    Which::Native,
    "/reserve",
    Cookie::Jwt,
);

/// The 1-worker set; the first four are the 2-worker set too, in this order.
const VARIANTS: [Variant; 8] = [
    BARE,
    FLOOR,
    ADMITTED,
    NATIVE,
    variant(
        "edge filter: valid pass, rate limits off",
        Which::FilterNoLimits,
        "/reserve",
        Cookie::Pass,
    ),
    variant(
        "edge filter: distinct passes (cache misses)",
        Which::Filter,
        "/reserve",
        Cookie::DistinctPasses,
    ),
    variant(
        "edge filter: no pass, 403",
        Which::Filter,
        "/reserve",
        Cookie::None,
    ),
    variant(
        "edge filter: bypass path",
        Which::Filter,
        "/static/x",
        Cookie::Pass,
    ),
];
const TWO_WORKER_VARIANTS: usize = 4;
/// Passes in the distinct-pass flood: ten times what the pass cache holds.
const DISTINCT_PASSES: usize = 20_480;

/// The Envoys of one set, by [`Which`].
struct Envoys(Vec<(Which, Envoy)>);

impl Envoys {
    fn start(variants: &[Variant], workers: u32, pinned_to: Option<u32>) -> Envoys {
        let mut envoys: Vec<(Which, Envoy)> = Vec::new();
        for v in variants {
            if envoys.iter().any(|(w, _)| *w == v.envoy) {
                continue;
            }
            let envoy = Envoy::start(
                &direct_response_bootstrap(v.envoy, &wasm_of(v.envoy)),
                workers,
            )
            .expect("start envoy");
            if let Some(cpu) = pinned_to {
                measure::pin(envoy.pid(), cpu);
            }
            envoys.push((v.envoy, envoy));
        }
        Envoys(envoys)
    }

    fn get(&self, which: Which) -> &Envoy {
        &self.0.iter().find(|(w, _)| *w == which).expect("started").1
    }
}

fn wasm_of(which: Which) -> std::path::PathBuf {
    match which {
        Which::Floor => wr_tests::fixtures::side_wasm("noop-filter"),
        Which::Extra(i) => extra_wasm()[i].1.clone(),
        _ => filter_wasm(),
    }
}

/// The builds named by `WR_BENCH_EXTRA_WASM` (`label=path,…`), as (label, path).
fn extra_wasm() -> &'static [(String, std::path::PathBuf)] {
    static EXTRA: std::sync::OnceLock<Vec<(String, std::path::PathBuf)>> =
        std::sync::OnceLock::new();
    EXTRA.get_or_init(|| {
        let list = std::env::var("WR_BENCH_EXTRA_WASM").unwrap_or_default();
        list.split(',')
            .filter(|item| !item.is_empty())
            .map(|item| {
                let (label, path) = item
                    .split_once('=')
                    .expect("WR_BENCH_EXTRA_WASM: label=path[,label=path…]");
                let path = std::path::PathBuf::from(path);
                assert!(
                    path.is_file(),
                    "WR_BENCH_EXTRA_WASM: {path:?} is not a file"
                );
                (label.to_owned(), path)
            })
            .collect()
    })
}

/// The 1-worker set: [`VARIANTS`], then one per extra build.
fn one_worker_variants() -> Vec<Variant> {
    let mut variants = VARIANTS.to_vec();
    for (i, (label, _)) in extra_wasm().iter().enumerate() {
        let name = format!("edge filter [{label}]: valid pass, admitted");
        variants.push(variant(
            Box::leak(name.into_boxed_str()),
            Which::Extra(i),
            "/reserve",
            Cookie::Pass,
        ));
    }
    variants
}

/// What the variants send.
struct Cookies {
    pass: String,
    jwt: String,
    distinct: std::path::PathBuf,
}

/// Runs every variant `rounds` times, interleaved; one `Vec<Run>` per variant.
fn measure_set(
    set: &str,
    variants: &[Variant],
    envoys: &Envoys,
    cookies: &Cookies,
    rounds: usize,
    load: (u32, u32, Option<u32>),
) -> Vec<Vec<Run>> {
    let (threads, seconds, cpu) = load;
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for (i, v) in variants.iter().enumerate() {
            let envoy = envoys.get(v.envoy);
            let url = format!("http://{}{}", envoy.addr, v.path);
            let cookie = match v.cookie {
                Cookie::None | Cookie::DistinctPasses => None,
                Cookie::Pass => Some(cookies.pass.as_str()),
                Cookie::Jwt => Some(cookies.jwt.as_str()),
            };
            let script = (v.cookie == Cookie::DistinctPasses).then_some(cookies.distinct.as_path());
            let load = Load {
                url: &url,
                cookie,
                script,
                threads,
                seconds,
                cpu,
            };
            let r = measure::run(&load, envoy.pid());
            eprintln!(
                "{set} round {}: {:<48} {:>7.0} req/s  p50 {:.3} ms  p99 {:.3} ms  {:.1} µs CPU/req",
                round + 1,
                v.name,
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.cpu_us
            );
            results[i].push(r);
        }
    }
    results
}

/// Prints one set's table and its goal ratios.
fn report(title: &str, variants: &[Variant], results: &[Vec<Run>]) {
    let med = |i: usize, f: fn(&Run) -> f64| median(results[i].iter().map(f).collect());
    let rps = |i: usize| med(i, |r| r.rps);
    let cpu = |i: usize| med(i, |r| r.cpu_us);
    println!("\n{title}");
    println!("| variant | req/s | vs bare | vs no-op filter | vs jwt_authn + local_ratelimit | p50 ms | p99 ms | Envoy CPU µs/req |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (i, v) in variants.iter().enumerate() {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.3} | {:.3} | {:.1} |",
            v.name,
            rps(i),
            rps(i) / rps(0),
            rps(i) / rps(1),
            rps(i) / rps(3),
            med(i, |r| r.p50_ms),
            med(i, |r| r.p99_ms),
            cpu(i)
        );
    }
    println!(
        "goals: admitted / (jwt_authn + local_ratelimit) = {:.2} (goal >= 1.3); admitted / no-op filter = {:.2} (goal >= 0.9)",
        rps(2) / rps(3),
        rps(2) / rps(1),
    );
    if let Some(distinct) = variants
        .iter()
        .position(|v| v.cookie == Cookie::DistinctPasses)
    {
        println!(
            "distinct passes / (jwt_authn + local_ratelimit) = {:.2} (goal >= 1.0)",
            rps(distinct) / rps(3)
        );
    }
    println!(
        "CPU per request above the no-op filter: ours admitted {:.1} µs, jwt_authn + local_ratelimit {:.1} µs",
        cpu(2) - cpu(1),
        cpu(3) - cpu(1)
    );
}

/// Median milliseconds, over `n` starts, from launching Envoy (1 worker) to ready.
fn start_ms(which: Which, n: usize) -> f64 {
    let bootstrap = direct_response_bootstrap(which, &wasm_of(which));
    median(
        (0..n)
            .map(|_| {
                let started = Instant::now();
                let envoy = Envoy::start(&bootstrap, 1).expect("start envoy");
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                drop(envoy);
                ms
            })
            .collect(),
    )
}

/// `--count`: instructions per request under callgrind (see [`count`]), for bare
/// Envoy, the no-op filter, ours (admitted, and the distinct-pass flood), Envoy's own
/// filters, and the builds of `WR_BENCH_EXTRA_WASM`; with `--cache`, first-level cache
/// misses per request too.
fn count_instructions(cache: bool) {
    let distinct = VARIANTS
        .iter()
        .find(|v| v.cookie == Cookie::DistinctPasses)
        .expect("the distinct-pass variant")
        .clone();
    let mut variants = vec![BARE, FLOOR, ADMITTED, NATIVE, distinct];
    variants.extend(one_worker_variants().split_off(VARIANTS.len()));
    let mut counted = Vec::new();
    for v in &variants {
        // Minted per variant: a pass lives ten minutes, a run takes about one.
        let cookies: Vec<String> = match v.cookie {
            Cookie::None => Vec::new(),
            Cookie::Pass => vec![format!("wr_pass={}", pass("concert", "bench-visitor"))],
            Cookie::Jwt => vec![format!("wr_jwt={}", native::hs256_jwt("bench-visitor"))],
            // More than the pass cache holds and than the run sends: all misses.
            Cookie::DistinctPasses => (0..count::REQUESTS + 1_000)
                .map(|i| format!("wr_pass={}", pass("concert", &format!("flood-{i}"))))
                .collect(),
        };
        let bootstrap = direct_response_bootstrap(v.envoy, &wasm_of(v.envoy));
        let n = count::per_request(&bootstrap, v.path, &cookies, cache);
        eprintln!(
            "{:<60} {:>9.0} instructions/request",
            v.name, n.instructions
        );
        counted.push(n);
    }
    let instructions = |i: usize| counted[i].instructions;
    let (bare, floor, native) = (instructions(0), instructions(1), instructions(3));
    println!(
        "\nedge filter, instructions per request of the whole Envoy process (1 worker, callgrind; {} requests after {} to warm up)",
        count::REQUESTS,
        count::WARM_UP
    );
    let (miss_head, miss_rule) = if cache {
        (" I1 misses/request | D1 misses/request |", "---:|---:|")
    } else {
        ("", "")
    };
    println!("| variant | instructions/request | above bare Envoy | above the no-op filter | jwt_authn + local_ratelimit ÷ this |{miss_head}");
    println!("|---|---:|---:|---:|---:|{miss_rule}");
    for (v, n) in variants.iter().zip(&counted) {
        let i = n.instructions;
        let misses = n
            .misses
            .map(|(code, data)| format!(" {code:.0} | {data:.0} |"))
            .unwrap_or_default();
        println!(
            "| {} | {i:.0} | {:.0} | {:.0} | {:.2} |{misses}",
            v.name,
            i - bare,
            i - floor,
            native / i
        );
    }
    let flag = if cache { " --cache" } else { "" };
    println!("\ncommand: cargo run -q -p wr-tools --bin bench-edge -- --count{flag}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {}
        ["--count"] => return count_instructions(false),
        ["--count", "--cache"] | ["--cache", "--count"] => return count_instructions(true),
        _ => {
            eprintln!("usage: bench-edge [--count [--cache]]\n(got {args:?})");
            std::process::exit(2);
        }
    }
    let seconds: u32 = env_number("WR_BENCH_SECONDS", 5);
    let rounds: usize = env_number("WR_BENCH_ROUNDS", 5);
    let scratch = std::env::temp_dir().join(format!("wr-bench-edge-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    let passes: Vec<String> = (0..DISTINCT_PASSES)
        .map(|i| format!("wr_pass={}", pass("concert", &format!("flood-{i}"))))
        .collect();
    let cookies = Cookies {
        pass: format!("wr_pass={}", pass("concert", "bench-visitor")),
        jwt: format!("wr_jwt={}", native::hs256_jwt("bench-visitor")),
        distinct: measure::cookie_script(&scratch, &passes),
    };

    let one_variants = one_worker_variants();
    let one = Envoys::start(&one_variants, 1, Some(1));
    let one_results = measure_set(
        "1 worker",
        &one_variants,
        &one,
        &cookies,
        rounds,
        (1, seconds, Some(0)),
    );
    // Sanity: the filtered Envoy really admitted and denied.
    let filtered = one.get(Which::Filter);
    assert!(
        filtered.stat("wasmcustom.wr_edge_admitted") > 0,
        "no admitted requests counted"
    );
    assert!(
        filtered.stat("wasmcustom.wr_edge_denied") > 0,
        "no denied requests counted"
    );
    assert!(
        one.get(Which::Native).stat("http.edge.jwt_authn.allowed") > 0,
        "jwt_authn allowed nothing: the native variant is misconfigured"
    );
    drop(one);
    let two_variants = &VARIANTS[..TWO_WORKER_VARIANTS];
    let two = Envoys::start(two_variants, 2, None);
    let two_results = measure_set(
        "2 workers",
        two_variants,
        &two,
        &cookies,
        rounds,
        (2, seconds, None),
    );
    drop(two);

    report(
        &format!("edge filter, Envoy 1 worker (pinned to CPU 1), wrk -t1 -c50 (CPU 0): medians of {rounds} rounds x {seconds} s"),
        &one_variants,
        &one_results,
    );
    report(
        &format!("edge filter, Envoy 2 workers, wrk -t2 -c50, nothing pinned: medians of {rounds} rounds x {seconds} s"),
        two_variants,
        &two_results,
    );

    let wasm = filter_wasm();
    let size = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    let (bare_ms, filter_ms) = (start_ms(Which::Bare, 5), start_ms(Which::Filter, 5));
    println!(
        "\nwasm module: {} bytes ({:.0} KiB); Envoy start to ready (1 worker, median of 5): {:.0} ms with the filter, {:.0} ms without: {:.0} ms for the VMs (main thread and worker) and configuration",
        size,
        size as f64 / 1024.0,
        filter_ms,
        bare_ms,
        filter_ms - bare_ms
    );
    let (native_ns, wasm_ns) = verify::verify_cost(&pass("concert", "bench-visitor"));
    println!(
        "pass verify alone (KeyRing::verify, 100k iterations, median of 5): native {:.0} ns, wasm (wasmtime/Cranelift) {:.0} ns, ratio {:.2}",
        native_ns,
        wasm_ns,
        wasm_ns / native_ns
    );
    println!("\ncommand: make bench (cargo run -q -p wr-tools --bin bench-edge), WR_BENCH_SECONDS={seconds} WR_BENCH_ROUNDS={rounds}");
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        uname()
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

fn uname() -> String {
    Command::new("uname")
        .arg("-srm")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
