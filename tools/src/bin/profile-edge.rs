//! `make bench` (edge part, deterministic): the work one request costs the edge filter,
//! counted rather than timed, so that it means the same on a noisy machine.
//!
//! The built filter runs under wasmtime with fuel metering (about one unit per wasm
//! operator the guest executes) and a proxy-wasm host that counts every host call.
//! Each request kind is warmed up, then measured over many requests, and reported per
//! request beside the no-op filter (the floor: what the SDK's dispatch alone costs).
//! The configuration is the throughput benchmark's ([`bench_filter_config`]: rate
//! limits on but never reached), the requests what wrk and Envoy's connection manager
//! send.
//!
//! Fuel is not time (a host call or an HMAC round costs more than an `i32.add`), and
//! host calls cost Envoy more than this host; but both counts repeat exactly, so a
//! change to the hot path shows here even when the machine hides it from `bench-edge`.

use wr_tests::fixtures::{bench_filter_config, filter_wasm, now, pass, side_wasm};
use wr_tests::proxy_wasm_host::{Clock, FilterModule, FilterVm, Metrics, SharedData, Work};

/// Requests measured per kind, after as many to warm up.
const REQUESTS: usize = 4_096;

/// What a kind of request sends.
enum Sends {
    /// The same valid pass every time (an admitted visitor in session).
    Pass,
    /// A different valid pass every time: more than the pass cache holds, so every
    /// request is a miss (an HMAC) and a new visitor.
    DistinctPasses,
    /// No cookie (403).
    Nothing,
}

struct Kind {
    name: &'static str,
    path: &'static str,
    sends: Sends,
    limits: bool,
}

const KINDS: [Kind; 5] = [
    Kind {
        name: "valid pass, admitted",
        path: "/reserve",
        sends: Sends::Pass,
        limits: true,
    },
    Kind {
        name: "valid pass, rate limits off",
        path: "/reserve",
        sends: Sends::Pass,
        limits: false,
    },
    Kind {
        name: "distinct passes (cache misses)",
        path: "/reserve",
        sends: Sends::DistinctPasses,
        limits: true,
    },
    Kind {
        name: "no pass, 403",
        path: "/reserve",
        sends: Sends::Nothing,
        limits: true,
    },
    Kind {
        name: "bypass path",
        path: "/static/x",
        sends: Sends::Pass,
        limits: true,
    },
];

/// The headers Envoy hands the filter for `wrk -H 'cookie: …'`.
fn headers<'a>(path: &'a str, cookie: Option<&'a str>) -> Vec<(&'a [u8], &'a [u8])> {
    let mut headers: Vec<(&[u8], &[u8])> = vec![
        (b":authority", b"127.0.0.1:10000"),
        (b":path", path.as_bytes()),
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b"x-forwarded-proto", b"http"),
        (b"x-request-id", b"5d3e5ba4-0d2c-4b6f-9d39-1b0c1f3e8a77"),
    ];
    if let Some(cookie) = cookie {
        headers.push((b"cookie", cookie.as_bytes()));
    }
    headers
}

const PEER: &str = "127.0.0.1:40000";

fn request(vm: &mut FilterVm, path: &str, cookie: Option<&str>) {
    vm.request(&headers(path, cookie), Some(PEER))
        .expect("the filter trapped");
}

/// One more request, traced: the fuel spent before each host call, in order.
fn stages(vm: &mut FilterVm, path: &str, cookie: Option<&str>) -> String {
    let stages = vm
        .trace_request(&headers(path, cookie), Some(PEER))
        .expect("the filter trapped");
    stages
        .iter()
        .map(|(call, fuel)| format!("{fuel} → {}", call.trim_start_matches("proxy_")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The work of `REQUESTS` requests after as many to warm up.
fn measure(vm: &mut FilterVm, path: &str, cookie: &dyn Fn(usize) -> Option<String>) -> Work {
    for i in 0..REQUESTS {
        request(vm, path, cookie(i).as_deref());
    }
    let before = vm.work();
    for i in REQUESTS..2 * REQUESTS {
        request(vm, path, cookie(i).as_deref());
    }
    vm.work().since(&before)
}

fn start(module: &FilterModule, config: &str) -> FilterVm {
    let vm = module
        .start(
            config.as_bytes(),
            &Clock::at_secs(now()),
            &SharedData::default(),
            &Metrics::default(),
        )
        .expect("start the VM");
    assert!(vm.configured(), "configure failed: {:?}", vm.logs());
    vm
}

/// Host calls per request, by name, most first.
fn calls_per_request(work: &Work) -> String {
    let mut calls: Vec<(&str, u64)> = work.calls.iter().map(|(n, c)| (*n, *c)).collect();
    calls.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let per = |n: u64| n as f64 / REQUESTS as f64;
    calls
        .iter()
        .map(|(name, n)| format!("{} {:.2}", name.trim_start_matches("proxy_"), per(*n)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() {
    let pass_cookie = format!("wr_pass={}", pass("concert", "bench-visitor"));
    let distinct: Vec<String> = (0..2 * REQUESTS + 2)
        .map(|i| format!("wr_pass={}", pass("concert", &format!("flood-{i}"))))
        .collect();

    let floor_module = FilterModule::load_metered(&side_wasm("noop-filter")).expect("no-op");
    let mut floor_vm = start(&floor_module, "{}");
    let floor = measure(&mut floor_vm, "/reserve", &|_| Some(pass_cookie.clone()));
    let floor_fuel = floor.fuel as f64 / REQUESTS as f64;
    let mut traces = vec![(
        "no-op filter (floor)",
        stages(&mut floor_vm, "/reserve", Some(&pass_cookie)),
    )];

    let module = FilterModule::load_metered(&filter_wasm()).expect("edge filter");
    println!(
        "edge filter, work per request under wasmtime (fuel ≈ wasm operators executed; {REQUESTS} requests after {REQUESTS} to warm up)"
    );
    println!("| request | fuel | fuel above the no-op filter | host calls | host calls by name |");
    println!("|---|---:|---:|---:|---|");
    println!(
        "| no-op filter (floor) | {floor_fuel:.0} | 0 | {:.2} | {} |",
        floor.host_calls() as f64 / REQUESTS as f64,
        calls_per_request(&floor)
    );
    for kind in &KINDS {
        let mut vm = start(&module, &bench_filter_config(kind.limits));
        let cookie = |i: usize| match kind.sends {
            Sends::Pass => Some(pass_cookie.clone()),
            Sends::DistinctPasses => Some(distinct[i].clone()),
            Sends::Nothing => None,
        };
        let work = measure(&mut vm, kind.path, &cookie);
        let fuel = work.fuel as f64 / REQUESTS as f64;
        println!(
            "| {} | {fuel:.0} | {:.0} | {:.2} | {} |",
            kind.name,
            fuel - floor_fuel,
            work.host_calls() as f64 / REQUESTS as f64,
            calls_per_request(&work)
        );
        // The next request may turn the pass cache over (every 1,024 new passes): trace
        // the one after it, a typical one.
        request(&mut vm, kind.path, cookie(2 * REQUESTS).as_deref());
        let next = cookie(2 * REQUESTS + 1);
        traces.push((kind.name, stages(&mut vm, kind.path, next.as_deref())));
    }
    println!(
        "\nwhere one more request's fuel goes: the fuel spent before each host call, in order"
    );
    println!("| request | fuel → host call, … |");
    println!("|---|---|");
    for (name, trace) in traces {
        println!("| {name} | {trace} |");
    }
}
