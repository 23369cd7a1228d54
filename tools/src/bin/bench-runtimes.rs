//! `make bench` (runtimes part): what one decision costs in each runtime the edge runs
//! on, and how big each artifact is.
//!
//! The request is the hot path: a protected path with a valid pass, the client and
//! visitor rate limits on (set high enough never to refuse, so the work is done but every
//! request is forwarded). Each runtime decides it `WR_BENCH_DECISIONS` times (default
//! 50,000; native 10×), `WR_BENCH_ROUNDS` rounds (default 3), runtimes interleaved round
//! by round; reported: median microseconds per decision, and the ratio to native.
//!
//! * native: the core itself (`Engine::outcome` with a `LocalStore`), optimised
//!   (`edge-core/examples/decide-many.rs`);
//! * proxy-wasm / wasmtime: the built filter through the proxy-wasm ABI (this crate's
//!   host), header map and host calls included;
//! * WIT component / wasmtime: the decider world, state and clock through its imports;
//! * Node and workerd: the JavaScript package (`decide`, JSON in and out); workerd is
//!   timed from outside (it freezes clocks while code runs): `workerd test` with n
//!   decisions minus the same with none.
//!
//! Envoy/V8 is measured by `bench-edge` (whole requests through Envoy, not decisions).
//! The wasmtime hosts here are this crate's, built like the tests (unoptimised host
//! glue; the guest code is compiled by Cranelift either way).

use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};
use wr_tests::components::{decider_wasm, gateway_wasm, DeciderModule, Request};
use wr_tests::fixtures::{filter_wasm, js_package, now, pass, workspace_root};
use wr_tests::proxy_wasm_host::{Clock, FilterModule, Metrics, SharedData};
use wr_tests::workerd::{workerd_bin, WorkerConfig, WorkerdDir};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config() -> Value {
    let unlimited = json!({"requests_per_second": 1_000_000, "burst": 1_000_000});
    json!({
        "keys": serde_json::from_str::<Value>(&keys_json()).unwrap(),
        "events": [{"id": "concert", "protected_prefixes": ["/reserve"]}],
        "client_rate_limit": unlimited,
        "visitor_rate_limit": unlimited,
    })
}

fn keys_json() -> String {
    wr_tests::fixtures::KEYS_JSON.to_owned()
}

/// The request: (path, headers, source).
fn request() -> (String, Vec<(String, String)>, String) {
    let cookie = format!("theme=dark; wr_pass={}", pass("concert", "visitor-1"));
    let headers = vec![
        ("accept".to_owned(), "text/html".to_owned()),
        ("cookie".to_owned(), cookie),
        ("user-agent".to_owned(), "bench".to_owned()),
    ];
    (
        "/reserve/seat/12".to_owned(),
        headers,
        "203.0.113.7:40000".to_owned(),
    )
}

fn micros_per(n: u64, started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Runs `command <bench.json>` (n decisions) and reads the nanoseconds per decision it
/// prints.
fn nanos_from(mut command: Command, n: u64) -> f64 {
    let file = std::env::temp_dir().join(format!("wr-bench-{}.json", std::process::id()));
    std::fs::write(&file, bench_json(n)).unwrap();
    let out = command.arg(&file).output().expect("run the bench command");
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The native core in an optimised build (this binary may be a debug build).
fn native(n: u64) -> f64 {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args([
            "run",
            "-q",
            "--release",
            "-p",
            "wr-edge-core",
            "--example",
            "decide-many",
            "--",
        ])
        .current_dir(workspace_root());
    nanos_from(cargo, n) / 1000.0
}

fn proxy_wasm(module: &FilterModule, n: u64) -> f64 {
    let mut vm = module
        .start(
            config().to_string().as_bytes(),
            &Clock::at_secs(now()),
            &SharedData::default(),
            &Metrics::default(),
        )
        .unwrap();
    let (path, headers, source) = request();
    let mut pairs: Vec<(&[u8], &[u8])> = vec![(b":path", path.as_bytes())];
    pairs.extend(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
    let started = Instant::now();
    for _ in 0..n {
        assert_eq!(vm.request(&pairs, Some(&source)).unwrap().status(), 200);
    }
    micros_per(n, started)
}

fn component(module: &DeciderModule, n: u64) -> f64 {
    let mut decider = module
        .start(&config().to_string(), now() * 1000)
        .unwrap()
        .unwrap();
    let (path, headers, source) = request();
    let request = Request {
        path: Some(path),
        headers,
        source: Some(source),
    };
    let started = Instant::now();
    for _ in 0..n {
        let decision = decider.decide(&request).unwrap();
        assert!(matches!(
            decision.action,
            wr_tests::components::Action::Forward(_)
        ));
    }
    micros_per(n, started)
}

fn bench_json(n: u64) -> String {
    let (path, headers, source) = request();
    json!({"config": config(), "now_ms": now() * 1000, "n": n,
        "request": {"path": path, "headers": headers, "source": source}})
    .to_string()
}

fn node(n: u64) -> f64 {
    let mut node = Command::new("node");
    node.arg(js_package().join("test/bench-node.mjs"));
    nanos_from(node, n) / 1000.0
}

fn workerd_seconds(n: u64) -> f64 {
    let json = bench_json(n);
    let dir = WorkerdDir::new(&format!("bench-{n}"), &[("bench.json", json.as_bytes())]);
    let config = dir.write_config(&WorkerConfig {
        main: "test/bench-workerd.js",
        json_modules: &["bench.json"],
        ..WorkerConfig::default()
    });
    let started = Instant::now();
    let out = Command::new(workerd_bin())
        .arg("test")
        .arg(&config)
        .current_dir(&dir.path)
        .output()
        .expect("workerd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed().as_secs_f64()
}

fn workerd(n: u64) -> f64 {
    let with = workerd_seconds(n);
    let without = workerd_seconds(0);
    (with - without).max(0.0) * 1e6 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn gzip_size(path: &std::path::Path) -> u64 {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -9 -c '{}' | wc -c", path.display()))
        .output()
        .expect("gzip");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn main() {
    let n = env_u64("WR_BENCH_DECISIONS", 50_000);
    let rounds = env_u64("WR_BENCH_ROUNDS", 3);
    let filter = FilterModule::load(&filter_wasm()).unwrap();
    let decider = DeciderModule::load().unwrap();
    let package = js_package();
    let names = [
        "native core",
        "proxy-wasm filter / wasmtime",
        "WIT component / wasmtime",
        "JS package / Node",
        "JS package / workerd",
    ];
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for round in 0..rounds {
        results[0].push(native(n * 10));
        results[1].push(proxy_wasm(&filter, n));
        results[2].push(component(&decider, n));
        results[3].push(node(n));
        results[4].push(workerd(n));
        eprintln!("round {} of {rounds} done", round + 1);
    }
    let native_median = median(results[0].clone());
    println!("Per decision (protected path, valid pass, both rate limits on), {n} decisions per round, {rounds} rounds:");
    println!("| runtime | µs per decision (median) | rounds | ÷ native |");
    println!("|---|---:|---|---:|");
    for (name, values) in names.iter().zip(&results) {
        let m = median(values.clone());
        let all: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
        println!(
            "| {name} | {m:.2} | {} | {:.1} |",
            all.join(" / "),
            m / native_median
        );
    }
    println!();
    println!("Artifacts:");
    println!("| artifact | bytes | gzip -9 |");
    println!("|---|---:|---:|");
    let artifacts = [
        ("proxy-wasm filter (wasm32-wasip1)", filter_wasm()),
        (
            "JS package: wr_edge_js_bg.wasm",
            package.join("pkg/wr_edge_js_bg.wasm"),
        ),
        (
            "JS package: wr_edge_js.js (glue)",
            package.join("pkg/wr_edge_js.js"),
        ),
        (
            "WIT component (decider, wasm32-wasip2)",
            decider_wasm().to_path_buf(),
        ),
        ("wasi:http gateway component", gateway_wasm().to_path_buf()),
    ];
    for (name, path) in artifacts {
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!("| {name} | {bytes} | {} |", gzip_size(&path));
    }
    println!();
    println!(
        "command: cargo run -q --release -p wr-tools --bin bench-runtimes (machine: {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}
