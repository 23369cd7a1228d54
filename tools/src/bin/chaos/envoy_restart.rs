//! Scenario `envoy-restart`: Envoy hot-restarted with a configuration push under load.

use std::time::Instant;

use serde_json::json;
use wr_pass::{Claims, KeyRing, TokenKind};
use wr_tests::envoy::{bootstrap, Envoy, Topology};
use wr_tests::fixtures::{filter_config, filter_wasm, now, pass, KEYS_JSON};
use wr_tests::http;
use wr_tests::processes::free_port;
use wr_tests::upstream::Upstream;

use super::support::*;

/// Envoy hot-restarted twice (each time with a new filter configuration: a second key
/// pushed into the ring) while admitted visitors keep going: no failed request.
pub fn envoy_restart() -> bool {
    let backend = Upstream::start();
    let wasm = filter_wasm();
    let port = free_port();
    let base_id = 20_000 + std::process::id() % 10_000;
    let config = |generation: u32| {
        let mut ring: serde_json::Value = serde_json::from_str(KEYS_JSON).unwrap();
        // Each generation adds a key, as a rotation would; the active key stays.
        for g in 1..=generation {
            ring["keys"][format!("pushed{g}")] = json!(pushed_key(g));
        }
        let mut boot = bootstrap(&Topology {
            wasm: &wasm,
            filter_config: &filter_config(json!({
                "keys": ring,
                "client_rate_limit": {"requests_per_second": 1_000_000, "burst": 1_000_000},
                "visitor_rate_limit": {"requests_per_second": 1_000_000, "burst": 1_000_000},
            })),
            backend: backend.addr,
            queue: backend.addr,
            trusted_hops: 0,
        });
        boot["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] =
            json!(port);
        boot
    };
    let mut generations = vec![Envoy::start_hot(&config(0), 1, base_id, 0, 2).expect("envoy 0")];
    let cookie = format!("wr_pass={}", pass("concert", "admitted"));
    let scratch = Scratch::new("restart");
    let script = scratch.script(
        "reserve.lua",
        "GET",
        "/reserve",
        &[("cookie", &cookie), ("accept", "application/json")],
    );
    let started = Instant::now();
    let load = wrk_in_background(format!("http://127.0.0.1:{port}"), script, 20, 24);
    let mut restarts = Vec::new();
    for (epoch, at) in [(1u32, 6.0), (2, 14.0)] {
        sleep_until(started, at);
        match Envoy::start_hot(&config(epoch), 1, base_id, epoch, 2) {
            Ok(e) => {
                restarts.push(started.elapsed().as_secs_f64());
                generations.push(e);
            }
            Err(e) => println!("epoch {epoch} did not start: {e:#}"),
        }
    }
    let load = load.join().unwrap();
    // The last push is live: a pass signed with the key it added gets in.
    let pushed_ring = KeyRing::from_json(
        &json!({"active": "pushed2", "keys": {"pushed2": pushed_key(2)}}).to_string(),
    )
    .unwrap();
    let t = now();
    let pushed_pass = pushed_ring
        .mint(
            TokenKind::Pass,
            &Claims::new("concert", "rotated", t - 1, t + 600),
        )
        .unwrap();
    let pushed_live = http::get(
        format!("127.0.0.1:{port}").parse().unwrap(),
        "/reserve",
        &[("cookie", format!("wr_pass={pushed_pass}").as_bytes())],
    )
    .is_ok_and(|r| r.status == 200);
    let old_gone = generations
        .iter_mut()
        .take(restarts.len())
        .all(|e| !e.is_running());

    println!("wrk with 20 connections sent an admitted visitor's requests (valid pass) through Envoy (1 worker) for 24 s; Envoy was hot-restarted (`--restart-epoch`, drain 2 s) at {} s, each new epoch with one more key pushed into the filter's key ring.\n", restarts.iter().map(|s| format!("{s:.1}")).collect::<Vec<_>>().join(" and "));
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| requests answered / per second | {} / {:.0} |",
        load.requests, load.rps
    );
    println!("| answered other than 2xx | {} |", load.non_2xx);
    println!(
        "| without an answer (connect errors, resets, timeouts) | {} |",
        load.socket_errors
    );
    println!(
        "| p50 / p99 / slowest | {:.2} ms / {:.2} ms / {:.0} ms |\n",
        load.p50_ms, load.p99_ms, load.max_ms
    );
    let mut v = Verdict(true);
    v.check(restarts.len() == 2, "both new epochs started");
    v.check(old_gone, "each old epoch drained and exited");
    v.check(
        pushed_live,
        "the new configuration is live (a pass signed with the pushed key gets in)",
    );
    v.check(
        load.requests > 0 && load.non_2xx == 0 && load.socket_errors == 0,
        "no failed request for the admitted visitor",
    );
    v.0
}

/// The secret of the key pushed in generation `g` of the Envoy restart scenario.
fn pushed_key(g: u32) -> String {
    use base64::Engine as _;
    let secret = format!("a key pushed in generation {g} of this run");
    base64::engine::general_purpose::STANDARD.encode(secret)
}
