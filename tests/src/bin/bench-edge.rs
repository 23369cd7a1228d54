//! `make bench` (edge part): the cost of the edge filter, measured as a ratio against
//! bare Envoy in the same run.
//!
//! Envoy (1 worker) answers every route with a `direct_response`, so no upstream is
//! involved; `wrk` (1 thread, 50 connections) drives it for `WR_BENCH_SECONDS` (5) per
//! round, `WR_BENCH_ROUNDS` (5) rounds, variants interleaved so machine noise hits all
//! alike. Reported: median requests/s and p50/p99 latency per variant, and each
//! filtered variant's throughput as a share of bare Envoy's.

use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};
use wr_tests::envoy::{bootstrap, Envoy, Topology};
use wr_tests::fixtures::{filter_config, filter_wasm, pass};

/// Which Envoy a variant runs against.
enum Which {
    /// No HTTP filter but the router.
    Bare,
    /// A Rust proxy-wasm filter that does nothing: the cost of wasm itself.
    Floor,
    /// Our filter with the client and visitor rate limits on.
    Filter,
    /// Our filter with both rate limits off: the pass check alone.
    FilterNoLimits,
    /// What a user would configure instead of us: `jwt_authn` (HS256 from a cookie)
    /// and `local_ratelimit`.
    Native,
}

/// The cookie a variant sends.
#[derive(Clone, Copy)]
enum Cookie {
    None,
    Pass,
    Jwt,
}

struct Variant {
    name: &'static str,
    envoy: Which,
    path: &'static str,
    cookie: Cookie,
}

const VARIANTS: [Variant; 7] = [
    Variant {
        name: "bare Envoy (no filter)",
        envoy: Which::Bare,
        path: "/reserve",
        cookie: Cookie::Pass,
    },
    Variant {
        name: "no-op Rust wasm filter (floor)",
        envoy: Which::Floor,
        path: "/reserve",
        cookie: Cookie::Pass,
    },
    Variant {
        name: "edge filter: valid pass, admitted",
        envoy: Which::Filter,
        path: "/reserve",
        cookie: Cookie::Pass,
    },
    Variant {
        name: "edge filter: valid pass, rate limits off",
        envoy: Which::FilterNoLimits,
        path: "/reserve",
        cookie: Cookie::Pass,
    },
    Variant {
        name: "Envoy jwt_authn (HS256 cookie) + local_ratelimit",
        envoy: Which::Native,
        path: "/reserve",
        cookie: Cookie::Jwt,
    },
    Variant {
        name: "edge filter: no pass, 403",
        envoy: Which::Filter,
        path: "/reserve",
        cookie: Cookie::None,
    },
    Variant {
        name: "edge filter: bypass path",
        envoy: Which::Filter,
        path: "/static/x",
        cookie: Cookie::Pass,
    },
];

/// Builds one of the benchmark's own wasm crates (each its own workspace under
/// `tests/`) into the shared target directory; returns the module's path.
fn side_wasm(crate_dir: &str) -> std::path::PathBuf {
    let root = wr_tests::fixtures::workspace_root();
    let target = root.join("target").join(crate_dir);
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "-q",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--manifest-path",
        ])
        .arg(root.join("tests").join(crate_dir).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building tests/{crate_dir} failed");
    target
        .join("wasm32-wasip1/release")
        .join(format!("{}.wasm", crate_dir.replace('-', "_")))
}

/// Nanoseconds per pass verification: (native, wasm under wasmtime/Cranelift), the
/// same `KeyRing::verify` loop (`tests/verify-bench`, release profile) on the same
/// pass, medians of five timed loops each.
fn verify_cost(token: &str) -> (f64, f64) {
    const ITERATIONS: u32 = 100_000;
    let now = wr_tests::fixtures::now();
    let root = wr_tests::fixtures::workspace_root();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["run", "-q", "--release", "--manifest-path"])
        .arg(root.join("tests/verify-bench/Cargo.toml"))
        .arg("--target-dir")
        .arg(root.join("target/verify-bench"))
        .args(["--", token, &now.to_string(), &ITERATIONS.to_string()])
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "native verify-bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let native: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("verify-bench prints nanoseconds");
    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::from_file(&engine, side_wasm("verify-bench")).expect("module");
    let mut store = wasmtime::Store::new(&engine, ());
    let mut linker = wasmtime::Linker::new(&engine);
    linker
        .define_unknown_imports_as_traps(&module)
        .expect("stub imports");
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("instantiate");
    let alloc = instance
        .get_typed_func::<u32, u32>(&mut store, "alloc")
        .expect("alloc export");
    let verify_loop = instance
        .get_typed_func::<(u32, u32, u64, u32), u32>(&mut store, "verify_loop")
        .expect("verify_loop export");
    let len = token.len() as u32;
    let ptr = alloc.call(&mut store, len).expect("alloc");
    let memory = instance.get_memory(&mut store, "memory").expect("memory");
    memory
        .write(&mut store, ptr as usize, token.as_bytes())
        .expect("write token");
    let wasm = median(
        (0..5)
            .map(|_| {
                let started = Instant::now();
                let valid = verify_loop
                    .call(&mut store, (ptr, len, now, ITERATIONS))
                    .expect("verify_loop");
                assert_eq!(valid, ITERATIONS, "wasm verify refused the pass");
                started.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
            })
            .collect(),
    );
    (native, wasm)
}

/// The HS256 key of the `jwt_authn` variant (a benchmark fixture, not a secret).
const JWT_KEY: &[u8] = b"bench-only-hs256-key-0123456789abcdef";

/// An HS256 JWT for `jwt_authn`: `{"iss":"wr","sub":visitor,"exp":now+1h}`.
fn hs256_jwt(visitor: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"iss": "wr", "sub": visitor, "exp": wr_tests::fixtures::now() + 3600});
    let payload = B64.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(JWT_KEY).expect("any key length");
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        B64.encode(mac.finalize().into_bytes())
    )
}

/// Envoy's own filters configured to do our job: a JWT from the `wr_jwt` cookie,
/// checked against an inline HS256 key, `sub` copied to the visitor header, and one
/// token bucket (high enough never to trigger).
fn native_filters() -> Value {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine as _;
    let jwks = json!({"keys": [{"kty": "oct", "alg": "HS256", "k": B64.encode(JWT_KEY)}]});
    let percent = json!({"default_value": {"numerator": 100, "denominator": "HUNDRED"}, "runtime_key": "unused"});
    json!([
        {"name": "envoy.filters.http.jwt_authn", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"wr": {
                "issuer": "wr",
                "from_cookies": ["wr_jwt"],
                "local_jwks": {"inline_string": jwks.to_string()},
                "claim_to_headers": [{"header_name": "x-wr-visitor", "claim_name": "sub"}]
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "wr"}}]
        }},
        {"name": "envoy.filters.http.local_ratelimit", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": "bench",
            "token_bucket": {"max_tokens": 1_000_000, "tokens_per_fill": 1_000_000, "fill_interval": "1s"},
            "filter_enabled": percent,
            "filter_enforced": percent
        }}
    ])
}

fn direct_response_bootstrap(which: Which, wasm: std::path::PathBuf) -> Value {
    let wasm = wasm.as_path();
    // Limits high enough never to trigger, so the shared-data CAS path still runs.
    let overrides = match which {
        Which::FilterNoLimits => json!({"client_rate_limit": null, "visitor_rate_limit": null}),
        _ => json!({
            "client_rate_limit": {"requests_per_second": 1_000_000, "burst": 1_000_000},
            "visitor_rate_limit": {"requests_per_second": 1_000_000, "burst": 1_000_000}
        }),
    };
    let config = filter_config(overrides);
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
    let filters = hcm["http_filters"].as_array_mut().unwrap();
    match which {
        Which::Floor | Which::Filter | Which::FilterNoLimits => {}
        Which::Bare => filters.retain(|f| f["name"] != "envoy.filters.http.wasm"),
        Which::Native => {
            filters.retain(|f| f["name"] != "envoy.filters.http.wasm");
            let router = filters.pop().expect("router");
            filters.extend(native_filters().as_array().unwrap().iter().cloned());
            filters.push(router);
        }
    }
    b
}

/// (requests/s, p50 ms, p99 ms) from wrk's `--latency` output.
fn run_wrk(url: &str, cookie: Option<&str>, seconds: u32) -> (f64, f64, f64) {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c50", &format!("-d{seconds}s"), "--latency"]);
    if let Some(c) = cookie {
        cmd.args(["-H", &format!("cookie: {c}")]);
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
    let start = |which: Which, wasm| {
        Envoy::start(&direct_response_bootstrap(which, wasm), 1).expect("start envoy")
    };
    let bare = start(Which::Bare, filter_wasm());
    let floor = start(Which::Floor, side_wasm("noop-filter"));
    let filtered = start(Which::Filter, filter_wasm());
    let no_limits = start(Which::FilterNoLimits, filter_wasm());
    let native = start(Which::Native, filter_wasm());
    let pass_cookie = format!("wr_pass={}", pass("concert", "bench-visitor"));
    let jwt_cookie = format!("wr_jwt={}", hs256_jwt("bench-visitor"));
    let mut results: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); VARIANTS.len()];
    for round in 0..rounds {
        for (i, v) in VARIANTS.iter().enumerate() {
            let envoy = match v.envoy {
                Which::Bare => &bare,
                Which::Floor => &floor,
                Which::Filter => &filtered,
                Which::FilterNoLimits => &no_limits,
                Which::Native => &native,
            };
            let cookie = match v.cookie {
                Cookie::None => None,
                Cookie::Pass => Some(pass_cookie.as_str()),
                Cookie::Jwt => Some(jwt_cookie.as_str()),
            };
            let url = format!("http://{}{}", envoy.addr, v.path);
            let r = run_wrk(&url, cookie, seconds);
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
    assert!(
        native.stat("http.edge.jwt_authn.allowed") > 0,
        "jwt_authn allowed nothing: the native variant is misconfigured"
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
    let rps = |i: usize| median(results[i].iter().map(|x| x.0).collect());
    println!(
        "\nissue-2 goals: admitted / (jwt_authn + local_ratelimit) = {:.2} (goal >= 1.3); admitted / no-op filter = {:.2} (goal >= 0.9); rate limits off / no-op filter = {:.2}",
        rps(2) / rps(4),
        rps(2) / rps(1),
        rps(3) / rps(1)
    );
    let (native_ns, wasm_ns) = verify_cost(&pass("concert", "bench-visitor"));
    println!(
        "\npass verify alone (KeyRing::verify, 100k iterations, median of 5): native {:.0} ns, wasm (wasmtime/Cranelift) {:.0} ns, ratio {:.2}",
        native_ns,
        wasm_ns,
        wasm_ns / native_ns
    );
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
