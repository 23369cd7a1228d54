//! `make bench` (queue part): origin-queue on a local six-node Redis Cluster with a
//! 300,000-visitor line, side by side with Redis's own ceiling for the same ZRANK.
//!
//! 1. joins/s while filling the line (wrk POST /join, 50 connections);
//! 2. Redis memory per waiting visitor (used_memory delta on the slot's master);
//! 3. status calls/s and p50/p99 (wrk, 50 connections, random visitors);
//! 4. redis-benchmark ZRANK on the same key: unpipelined (50 clients) and pipelined (-P 16).
//!
//! `bench-queue --tracing` measures instead what traces and the operator console cost:
//! after step 1, status calls/s (as in 3) of a fresh origin-queue per run with tracing
//! off, off with the console's figures fetched every second, traces sampled at 1 % and
//! at 100 %, exported over OTLP/HTTP (protobuf) to a receiver in this process; rounds
//! interleaved, medians.
//!
//! `bench-queue --against <origin-queue binary>` compares two builds on the status path:
//! after step 1, status calls/s and the Redis script time per poll of this build and of
//! the other (a fresh process of each per round, on the same line), rounds interleaved,
//! medians: the before-and-after of a change to the status path.
//!
//! Everything runs on this machine (2 cores shared by Redis, origin-queue and the load
//! tool), so the ratios matter more than the absolute numbers.

use std::io::Write;
use std::process::Command;

use wr_pass::{Claims, TokenKind};
use wr_tests::fixtures::{env_number, keys, now};
use wr_tests::processes::{origin_queue_release_bin, OriginQueue, RedisCluster};
use wr_tests::redis_nodes::{master_for, redis_cli, used_memory};
use wr_tests::wrk::{Wrk, WrkResult};

const EVENT: &str = "bench";

/// Script calls the master at `port` ran, and the microseconds it spent in them, since
/// the last CONFIG RESETSTAT.
fn script_stats(port: &str) -> (f64, f64) {
    let stats = redis_cli(port, &["INFO", "commandstats"]);
    let field = |name: &str| {
        stats
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_evalsha:"))
            .and_then(|fields| fields.split(',').find_map(|f| f.strip_prefix(name)))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (field("calls="), field("usec="))
}

fn wrk(url: &str, seconds: u64, script: &std::path::Path) -> WrkResult {
    Wrk {
        seconds,
        script,
        ..Wrk::default()
    }
    .run(url)
}

fn redis_benchmark_zrank(port: &str, key: &str, member: &str, pipeline: u32) -> f64 {
    let out = Command::new("redis-benchmark")
        .args([
            "-p",
            port,
            "-c",
            "50",
            "-n",
            "300000",
            "-P",
            &pipeline.to_string(),
            "-q",
            "ZRANK",
            key,
            member,
        ])
        .output()
        .expect("redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    // Progress lines end in \r; the summary reads "ZRANK k m: 60060.06 requests per second, p50=…".
    text.split(['\r', '\n'])
        .find(|piece| piece.contains("requests per second"))
        .and_then(|piece| piece.rsplit(": ").next())
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0)
}

fn main() {
    let target = env_number("WR_BENCH_VISITORS", 300_000);
    let seconds = env_number("WR_BENCH_SECONDS", 10);
    let rounds = env_number("WR_BENCH_ROUNDS", 3);
    let args: Vec<String> = std::env::args().collect();
    let tracing_only = args.iter().any(|a| a == "--tracing");
    let against = args
        .iter()
        .position(|a| a == "--against")
        .map(|i| match args.get(i + 1) {
            Some(path) if std::path::Path::new(path).is_file() => std::path::PathBuf::from(path),
            _ => {
                eprintln!("bench-queue: --against needs the path of another origin-queue binary");
                std::process::exit(2)
            }
        });
    let binary = origin_queue_release_bin();
    let cluster = RedisCluster::start();
    let limits = [
        ("WR_CLIENT_RATE_LIMIT", "1000000:1000000"),
        ("WR_VISITOR_RATE_LIMIT", "1000000:1000000"),
        ("WR_LOG", "error"),
    ];
    let q = OriginQueue::start_binary(&binary, &cluster.nodes, &limits);
    let t = now();
    // Opens later: nobody is admitted, the line only grows.
    q.put_scheduled_event(EVENT);

    let qkey = format!("{{wr:{EVENT}}}:q");
    let master = master_for(&cluster.nodes, &format!("{{wr:{EVENT}}}:cfg"));
    let memory_before = used_memory(&master);

    let dir = std::env::temp_dir().join(format!("wr-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let join_lua = dir.join("join.lua");
    std::fs::write(&join_lua, "wrk.method = \"POST\"\nwrk.body = \"\"\n").unwrap();
    let url = format!("http://{}", q.addr);
    let join_url = format!("{url}/v1/events/{EVENT}/join");

    // 1. Fill the line with joins through the service.
    let mut join_rates = Vec::new();
    let mut join_errors = 0;
    loop {
        let waiting: u64 = redis_cli(&master, &["ZCARD", &qkey]).parse().unwrap_or(0);
        if waiting >= target {
            break;
        }
        let r = wrk(
            &join_url,
            seconds.min(((target - waiting) / 15_000).max(1)),
            &join_lua,
        );
        eprintln!(
            "joins: {:.0}/s (p50 {:.2} ms, p99 {:.2} ms), {} requests",
            r.rps, r.p50_ms, r.p99_ms, r.requests
        );
        join_rates.push(r.rps);
        join_errors += r.non_2xx;
    }
    let waiting: u64 = redis_cli(&master, &["ZCARD", &qkey]).parse().unwrap();
    let memory_after = used_memory(&master);
    let per_visitor = (memory_after.saturating_sub(memory_before)) as f64 / waiting as f64;

    // 2. Tickets for 20,000 random waiting visitors, for the status load.
    let members = redis_cli(&master, &["ZRANDMEMBER", &qkey, "20000"]);
    let ring = keys();
    let mut file = std::fs::File::create(dir.join("tickets.txt")).unwrap();
    for visitor in members.lines() {
        let ticket = ring
            .mint(
                TokenKind::Ticket,
                &Claims::new(EVENT, visitor.trim(), t, t + 86_000),
            )
            .unwrap();
        writeln!(file, "{ticket}").unwrap();
    }
    let middle = members.lines().next().unwrap_or("x").trim().to_owned();
    let status_lua = dir.join("status.lua");
    std::fs::write(
        &status_lua,
        format!(
            "-- Requests are formatted once, up front, so that wrk spends its CPU sending them.\n\
             local requests = {{}}\nfor line in io.lines(\"{}\") do\n  \
             requests[#requests + 1] = wrk.format(\"GET\", \"/v1/events/{EVENT}/status\", {{[\"x-wr-ticket\"] = line}})\nend\n\
             request = function()\n  return requests[math.random(#requests)]\nend\n",
            dir.join("tickets.txt").display()
        ),
    )
    .unwrap();

    // The service's own HTTP floor: a request that touches neither the ticket nor Redis.
    let plain_lua = dir.join("plain.lua");
    std::fs::write(&plain_lua, "-- a plain GET\n").unwrap();

    if let Some(other) = against {
        drop(q);
        compare_builds(
            [&binary, &other],
            &cluster.nodes,
            &master,
            seconds,
            rounds,
            &status_lua,
        );
        let _ = std::fs::remove_dir_all(&dir);
        cluster.stop();
        return;
    }

    if tracing_only {
        drop(q);
        tracing_cost(&binary, &cluster.nodes, seconds, rounds, &status_lua);
        let _ = std::fs::remove_dir_all(&dir);
        cluster.stop();
        return;
    }

    // 3 and 4, interleaved rounds.
    let mut status_runs = Vec::new();
    let mut floor_rates = Vec::new();
    let mut script_us = Vec::new();
    let mut batch_sizes = Vec::new();
    let mut zrank_plain = Vec::new();
    let mut zrank_piped = Vec::new();
    for round in 1..=rounds {
        redis_cli(&master, &["CONFIG", "RESETSTAT"]);
        let s = wrk(&url, seconds, &status_lua);
        let (scripts, usec) = script_stats(&master);
        let per_poll = usec / s.requests.max(1) as f64;
        let batch = s.requests as f64 / scripts.max(1.0);
        eprintln!(
            "round {round}: status {:.0}/s p50 {:.2} ms p99 {:.2} ms (non-2xx {}), Redis script time {per_poll:.2} µs per poll, {batch:.1} polls per script call",
            s.rps, s.p50_ms, s.p99_ms, s.non_2xx
        );
        script_us.push(per_poll);
        batch_sizes.push(batch);
        status_runs.push(s);
        let floor = wrk(&format!("{url}/healthz"), seconds, &plain_lua);
        eprintln!("round {round}: GET /healthz {:.0}/s", floor.rps);
        floor_rates.push(floor.rps);
        let z = redis_benchmark_zrank(&master, &qkey, &middle, 1);
        let zp = redis_benchmark_zrank(&master, &qkey, &middle, 16);
        eprintln!("round {round}: redis-benchmark ZRANK {z:.0}/s, pipelined -P 16 {zp:.0}/s");
        zrank_plain.push(z);
        zrank_piped.push(zp);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let status_rps = median(status_runs.iter().map(|r| r.rps).collect());
    let status_p50 = median(status_runs.iter().map(|r| r.p50_ms).collect());
    let status_p99 = median(status_runs.iter().map(|r| r.p99_ms).collect());
    let floor_rps = median(floor_rates);
    let z1 = median(zrank_plain);
    let z16 = median(zrank_piped);
    let status_errors: u64 = status_runs.iter().map(|r| r.non_2xx).sum();
    println!("\norigin-queue on a 6-node Redis Cluster, {waiting} visitors waiting; medians of {rounds} rounds x {seconds} s");
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| joins/s while filling (wrk -t2 -c50 POST /join) | {:.0} |",
        median(join_rates)
    );
    println!("| join errors (non-2xx) | {join_errors} |");
    println!("| Redis memory per waiting visitor (used_memory delta on the slot's master) | {per_visitor:.0} bytes |");
    println!("| status calls/s (wrk -t2 -c50, 20k random visitors) | {status_rps:.0} |");
    println!("| status p50 / p99 | {status_p50:.2} ms / {status_p99:.2} ms |");
    println!("| status errors (non-2xx) | {status_errors} |");
    println!(
        "| polls answered per status script call (batch size) | {:.1} |",
        median(batch_sizes)
    );
    println!(
        "| Redis time in the status script per poll (EVALSHA usec in INFO commandstats; wall time, so it includes preemption on shared cores) | {:.2} µs |",
        median(script_us)
    );
    println!("| redis-benchmark ZRANK, 50 clients, unpipelined | {z1:.0} |");
    println!("| redis-benchmark ZRANK, 50 clients, -P 16 | {z16:.0} |");
    println!(
        "| status calls/s as a share of unpipelined ZRANK/s | {:.2} |",
        status_rps / z1
    );
    println!("| origin-queue's HTTP floor: GET /healthz/s (same wrk, no ticket, no Redis) | {floor_rps:.0} |");
    println!(
        "| status calls/s as a share of /healthz/s | {:.2} |",
        status_rps / floor_rps
    );
    println!("\ncommand: make bench (cargo run -q -p wr-tools --bin bench-queue), WR_BENCH_VISITORS={target} WR_BENCH_SECONDS={seconds} WR_BENCH_ROUNDS={rounds}");
    let _ = std::fs::remove_dir_all(&dir);
    drop(q);
    cluster.stop();
}

/// One way to run origin-queue for the tracing comparison.
struct Variant {
    name: &'static str,
    env: &'static [(&'static str, &'static str)],
    /// Fetch the console's figures every second during the run.
    console: bool,
}

/// Status calls/s and Redis script time per poll of two builds (this one first), a fresh
/// process of each per round on the same line, rounds interleaved (the order alternates
/// from round to round); medians.
fn compare_builds(
    binaries: [&std::path::Path; 2],
    nodes: &[String],
    master: &str,
    seconds: u64,
    rounds: u64,
    status_lua: &std::path::Path,
) {
    let limits = [
        ("WR_CLIENT_RATE_LIMIT", "1000000:1000000"),
        ("WR_VISITOR_RATE_LIMIT", "1000000:1000000"),
        ("WR_LOG", "error"),
    ];
    let mut rates: [Vec<f64>; 2] = Default::default();
    let mut script_us: [Vec<f64>; 2] = Default::default();
    for round in 1..=rounds {
        let order: [usize; 2] = if round % 2 == 1 { [0, 1] } else { [1, 0] };
        for i in order {
            let q = OriginQueue::start_binary(binaries[i], nodes, &limits);
            redis_cli(master, &["CONFIG", "RESETSTAT"]);
            let s = wrk(&format!("http://{}", q.addr), seconds, status_lua);
            let (_, usec) = script_stats(master);
            let per_poll = usec / s.requests.max(1) as f64;
            eprintln!(
                "round {round}, {}: status {:.0}/s (non-2xx {}), {per_poll:.2} µs of script per poll",
                binaries[i].display(),
                s.rps,
                s.non_2xx
            );
            rates[i].push(s.rps);
            script_us[i].push(per_poll);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let listed = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!(
        "
status path, two builds side by side: medians of {rounds} interleaved rounds x {seconds} s"
    );
    println!("| build | status calls/s, median (rounds) | ÷ the other build | Redis script time per poll |");
    println!("|---|---:|---:|---:|");
    for (i, name) in ["this build", "the other build"].iter().enumerate() {
        println!(
            "| {name} ({}) | **{:.0}** ({}) | {:.2} | {:.2} µs |",
            binaries[i].display(),
            median(&rates[i]),
            listed(&rates[i]),
            median(&rates[i]) / median(&rates[1 - i]),
            median(&script_us[i])
        );
    }
    println!("
command: cargo run -q --release -p wr-tools --bin bench-queue -- --against <binary> (WR_BENCH_VISITORS, WR_BENCH_SECONDS={seconds}, WR_BENCH_ROUNDS={rounds})");
}

/// Status calls/s with tracing off, off with the console open, sampled at 1 % and at
/// 100 %: a fresh origin-queue per run (the same line), rounds interleaved.
fn tracing_cost(
    binary: &std::path::Path,
    nodes: &[String],
    seconds: u64,
    rounds: u64,
    status_lua: &std::path::Path,
) {
    let collector = wr_tests::otlp::Collector::start();
    let endpoint: &'static str = Box::leak(collector.endpoint().into_boxed_str());
    let exporting = |ratio: &'static str| -> &'static [(&'static str, &'static str)] {
        Box::leak(
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", ratio),
            ]
            .into_boxed_slice(),
        )
    };
    let variants = [
        Variant {
            name: "tracing off",
            env: &[],
            console: false,
        },
        Variant {
            name: "tracing off, console figures fetched every second",
            env: &[],
            console: true,
        },
        Variant {
            name: "traces sampled at 1 %",
            env: exporting("0.01"),
            console: false,
        },
        Variant {
            name: "traces sampled at 100 %",
            env: exporting("1"),
            console: false,
        },
    ];
    let limits = [
        ("WR_CLIENT_RATE_LIMIT", "1000000:1000000"),
        ("WR_VISITOR_RATE_LIMIT", "1000000:1000000"),
        ("WR_LOG", "error"),
    ];
    let mut results: Vec<Vec<WrkResult>> = variants.iter().map(|_| Vec::new()).collect();
    let mut exported: Vec<Vec<(u64, u64)>> = variants.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for (i, variant) in variants.iter().enumerate() {
            let env: Vec<(&str, &str)> = limits.iter().chain(variant.env).copied().collect();
            let q = OriginQueue::start_binary(binary, nodes, &env);
            let url = format!("http://{}", q.addr);
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let console = variant.console.then(|| {
                let (stop, addr) = (stop.clone(), q.addr);
                std::thread::spawn(move || {
                    let auth = format!("Bearer {}", wr_tests::processes::ADMIN_TOKEN);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _ = wr_tests::http::get(
                            addr,
                            &format!("/v1/admin/events/{EVENT}/console"),
                            &[("authorization", auth.as_bytes())],
                        );
                        std::thread::sleep(std::time::Duration::from_secs(1));
                    }
                })
            });
            let before = collector.received();
            let r = wrk(&url, seconds, status_lua);
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(console) = console {
                let _ = console.join();
            }
            drop(q);
            let after = collector.received();
            eprintln!(
                "round {round}, {}: status {:.0}/s p50 {:.2} ms p99 {:.2} ms (non-2xx {}), {} exports, {} KiB",
                variant.name,
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.non_2xx,
                after.0 - before.0,
                (after.1 - before.1) / 1024
            );
            exported[i].push((after.0 - before.0, after.1 - before.1));
            results[i].push(r);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let base = median(results[0].iter().map(|r| r.rps).collect());
    println!("\nWhat tracing and the console cost: status calls/s, medians of {rounds} interleaved rounds x {seconds} s");
    println!("| origin-queue | status calls/s (rounds) | ÷ tracing off | p50 / p99 | OTLP exported per run |");
    println!("|---|---:|---:|---:|---:|");
    for (i, variant) in variants.iter().enumerate() {
        let rps: Vec<f64> = results[i].iter().map(|r| r.rps).collect();
        let rounds_text: Vec<String> = rps.iter().map(|r| format!("{r:.0}")).collect();
        let m = median(rps);
        let p50 = median(results[i].iter().map(|r| r.p50_ms).collect());
        let p99 = median(results[i].iter().map(|r| r.p99_ms).collect());
        let kib = median(exported[i].iter().map(|e| e.1 as f64 / 1024.0).collect());
        let errors: u64 = results[i].iter().map(|r| r.non_2xx).sum();
        println!(
            "| {} | **{m:.0}** ({}) | {:.2} | {p50:.2} / {p99:.2} ms | {kib:.0} KiB{} |",
            variant.name,
            rounds_text.join(" / "),
            m / base,
            if errors > 0 {
                format!(", {errors} non-2xx")
            } else {
                String::new()
            }
        );
    }
    println!("\ncommand: cargo run -q --release -p wr-tools --bin bench-queue -- --tracing (WR_BENCH_VISITORS, WR_BENCH_SECONDS={seconds}, WR_BENCH_ROUNDS={rounds})");
}
