//! `make bench` (edge part): the cost of the edge filter, measured as a ratio against
//! bare Envoy in the same run.
//!
//! Envoy (1 worker) answers every route with a `direct_response`, so no upstream is
//! involved; `wrk` (1 thread, 50 connections) drives it for `WR_BENCH_SECONDS` (5) per
//! round, `WR_BENCH_ROUNDS` (5) rounds, variants interleaved so machine noise hits all
//! alike. Reported: median requests/s and p50/p99 latency per variant, and each
//! filtered variant's throughput as a share of bare Envoy's.

use std::process::Command;

use serde_json::{json, Value};
use wr_tests::envoy::{bootstrap, Envoy, Topology};
use wr_tests::fixtures::{filter_config, filter_wasm, pass};

/// Which Envoy a variant runs against.
enum Which {
    Bare,
    Floor,
    Filter,
}

struct Variant {
    name: &'static str,
    envoy: Which,
    path: &'static str,
    cookie: bool,
}

const VARIANTS: [Variant; 5] = [
    Variant {
        name: "bare Envoy (no filter)",
        envoy: Which::Bare,
        path: "/reserve",
        cookie: true,
    },
    Variant {
        name: "no-op Rust wasm filter (floor)",
        envoy: Which::Floor,
        path: "/reserve",
        cookie: true,
    },
    Variant {
        name: "edge filter: valid pass, admitted",
        envoy: Which::Filter,
        path: "/reserve",
        cookie: true,
    },
    Variant {
        name: "edge filter: no pass, 403",
        envoy: Which::Filter,
        path: "/reserve",
        cookie: false,
    },
    Variant {
        name: "edge filter: bypass path",
        envoy: Which::Filter,
        path: "/static/x",
        cookie: true,
    },
];

/// Builds the no-op filter (its own workspace) into the shared target directory.
fn noop_wasm() -> std::path::PathBuf {
    let root = wr_tests::fixtures::workspace_root();
    let target = root.join("target/noop-filter");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "-q",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--manifest-path",
        ])
        .arg(root.join("tests/noop-filter/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the no-op filter failed");
    target.join("wasm32-wasip1/release/noop_filter.wasm")
}

fn direct_response_bootstrap(with_filter: bool, wasm: std::path::PathBuf) -> Value {
    let wasm = wasm.as_path();
    // Limits high enough never to trigger, so the shared-data CAS path still runs.
    let config = filter_config(json!({
        "client_rate_limit": {"requests_per_second": 1_000_000, "burst": 1_000_000},
        "visitor_rate_limit": {"requests_per_second": 1_000_000, "burst": 1_000_000}
    }));
    let unused = "127.0.0.1:9".parse().unwrap();
    let topology = Topology {
        wasm,
        filter_config: &config,
        backend: unused,
        queue: unused,
        trusted_hops: 0,
    };
    let mut b = bootstrap(&topology);
    let hcm = &mut b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    hcm["route_config"]["virtual_hosts"][0]["routes"] = json!([{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]);
    if !with_filter {
        let filters = hcm["http_filters"].as_array_mut().unwrap();
        filters.retain(|f| f["name"] != "envoy.filters.http.wasm");
    }
    b
}

/// (requests/s, p50 ms, p99 ms) from wrk's `--latency` output.
fn run_wrk(url: &str, cookie: Option<&str>, seconds: u32) -> (f64, f64, f64) {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c50", &format!("-d{seconds}s"), "--latency"]);
    if let Some(c) = cookie {
        cmd.args(["-H", &format!("cookie: wr_pass={c}")]);
    }
    cmd.args(["-H", "accept: application/json", url]);
    let out = cmd.output().expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let pct = |p: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(p))
            .map(|v| to_ms(v.trim()))
            .unwrap_or(f64::NAN)
    };
    (rps, pct("50%"), pct("99%"))
}

fn to_ms(v: &str) -> f64 {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let seconds: u32 = std::env::var("WR_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rounds: usize = std::env::var("WR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let bare = Envoy::start(&direct_response_bootstrap(false, filter_wasm()), 1)
        .expect("start bare envoy");
    let filtered = Envoy::start(&direct_response_bootstrap(true, filter_wasm()), 1)
        .expect("start filtered envoy");
    let floor =
        Envoy::start(&direct_response_bootstrap(true, noop_wasm()), 1).expect("start floor envoy");
    let cookie = pass("concert", "bench-visitor");
    let mut results: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); VARIANTS.len()];
    for round in 0..rounds {
        for (i, v) in VARIANTS.iter().enumerate() {
            let envoy = match v.envoy {
                Which::Bare => &bare,
                Which::Floor => &floor,
                Which::Filter => &filtered,
            };
            let url = format!("http://{}{}", envoy.addr, v.path);
            let r = run_wrk(&url, v.cookie.then_some(cookie.as_str()), seconds);
            eprintln!(
                "round {}: {:<32} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms",
                round + 1,
                v.name,
                r.0,
                r.1,
                r.2
            );
            results[i].push(r);
        }
    }
    // Sanity: the filtered Envoy really admitted and denied.
    assert!(
        filtered.stat("wasmcustom.wr_edge_admitted") > 0,
        "no admitted requests counted"
    );
    assert!(
        filtered.stat("wasmcustom.wr_edge_denied") > 0,
        "no denied requests counted"
    );
    let bare_rps = median(results[0].iter().map(|r| r.0).collect());
    println!("\nedge filter overhead: medians of {rounds} rounds x {seconds} s, Envoy 1 worker, wrk -t1 -c50");
    let floor_rps = median(results[1].iter().map(|r| r.0).collect());
    println!("| variant | req/s | vs bare Envoy | vs no-op filter | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (v, r) in VARIANTS.iter().zip(&results) {
        let rps = median(r.iter().map(|x| x.0).collect());
        let p50 = median(r.iter().map(|x| x.1).collect());
        let p99 = median(r.iter().map(|x| x.2).collect());
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.3} | {:.3} |",
            v.name,
            rps,
            rps / bare_rps,
            rps / floor_rps,
            p50,
            p99
        );
    }
    println!("\ncommand: make bench (cargo run -q -p wr-tests --bin bench-edge), WR_BENCH_SECONDS={seconds} WR_BENCH_ROUNDS={rounds}");
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        uname()
    );
}

fn uname() -> String {
    Command::new("uname")
        .arg("-srm")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
