//! `make bench` (queue part): origin-queue on a local six-node Redis Cluster with a
//! 300,000-visitor line, side by side with Redis's own ceiling for the same ZRANK.
//!
//! 1. joins/s while filling the line (wrk POST /join, 50 connections);
//! 2. Redis memory per waiting visitor (used_memory delta on the slot's master);
//! 3. status calls/s and p50/p99 (wrk, 50 connections, random visitors);
//! 4. redis-benchmark ZRANK on the same key: unpipelined (50 clients) and pipelined (-P 16).
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
    println!("\ncommand: make bench (cargo run -q -p wr-tests --bin bench-queue), WR_BENCH_VISITORS={target} WR_BENCH_SECONDS={seconds} WR_BENCH_ROUNDS={rounds}");
    let _ = std::fs::remove_dir_all(&dir);
    drop(q);
    cluster.stop();
}
