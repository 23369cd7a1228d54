//! Scenario `outage`: the whole Redis Cluster down for 30 s under load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wr_tests::http;
use wr_tests::processes::Stack;

use super::support::*;
use super::UNLIMITED;

/// The whole Redis Cluster down for 30 s while 50 connections poll status: 503 +
/// `Retry-After` within the bounded timeout, no task or memory pile-up, pass holders
/// still get in through the edge, and everything recovers by itself.
pub fn outage() -> bool {
    const DOWN_AT: f64 = 10.0;
    const UP_AT: f64 = 40.0;
    const END: f64 = 60.0;
    let stack = Stack::up_with(&[
        ("WR_PROFILE", "release"),
        ("WR_CLIENT_RATE_LIMIT", UNLIMITED),
        ("WR_VISITOR_RATE_LIMIT", UNLIMITED),
        ("WR_LOG", "error"),
    ]);
    let cookie = format!("wr_pass={}", stack.pass("demo", "holder"));
    let joined = http::request(stack.queue, "POST", "/v1/events/demo/join", &[], b"").unwrap();
    let ticket = joined.header("x-wr-ticket").expect("a ticket").to_owned();
    let scratch = Scratch::new("outage");
    let status_path = "/v1/events/demo/status";
    let script = scratch.script(
        "status.lua",
        "GET",
        status_path,
        &[("x-wr-ticket", &ticket)],
    );
    let oq = pid_file(&stack.state_dir(), "origin-queue");

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let load = wrk_in_background(
        format!("http://{}", stack.queue),
        script,
        50,
        END as u64 - 2,
    );
    let footprints = sample(oq, started, stop.clone());
    let (edge, queue) = (stack.edge, stack.queue);
    let holders = probe(
        started,
        Duration::from_millis(50),
        stop.clone(),
        move || {
            http::get(
                edge,
                "/reserve?tag=chaos",
                &[
                    ("cookie", cookie.as_bytes()),
                    ("accept", b"application/json"),
                ],
            )
            .ok()
        },
    );
    let ticket2 = ticket.clone();
    let polls = probe(
        started,
        Duration::from_millis(100),
        stop.clone(),
        move || http::get(queue, status_path, &[("x-wr-ticket", ticket2.as_bytes())]).ok(),
    );

    sleep_until(started, DOWN_AT);
    stack.redis("stop");
    let down_at = started.elapsed().as_secs_f64();
    sleep_until(started, UP_AT);
    stack.redis("start");
    let up_at = started.elapsed().as_secs_f64();
    sleep_until(started, END);
    stop.store(true, Ordering::Relaxed);
    let load = load.join().unwrap();
    let footprints = footprints.join().unwrap();
    let holders = holders.join().unwrap();
    let polls = polls.join().unwrap();

    let during: Vec<&Probe> = polls
        .iter()
        .filter(|p| p.at > down_at + 1.0 && p.at < up_at)
        .collect();
    let during_503 = during
        .iter()
        .filter(|p| p.status == 503 && p.retry_after)
        .count();
    let slowest_during = during.iter().map(|p| p.millis).fold(0.0, f64::max);
    let back = polls
        .iter()
        .find(|p| p.at > up_at && p.status == 200)
        .map(|p| p.at - up_at);
    let after_back: Vec<&Probe> = polls
        .iter()
        .filter(|p| back.is_some_and(|b| p.at > up_at + b))
        .collect();
    let holders_ok = holders.iter().filter(|p| p.status == 200).count();
    let fp = |from: f64, to: f64| between(&footprints, from, to);
    let (before, down, after) = (fp(2.0, down_at), fp(down_at, up_at), fp(up_at, END));
    let rss = |v: &[Footprint]| max_of(v.iter().map(|f| f.rss_kib)) / 1024;
    let threads = |v: &[Footprint]| max_of(v.iter().map(|f| f.threads));
    let fds = |v: &[Footprint]| max_of(v.iter().map(|f| f.fds));

    println!("Redis Cluster stopped at {down_at:.1} s and started at {up_at:.1} s, while wrk polled status with 50 connections straight at origin-queue (release build) for {:.0} s.\n", END - 2.0);
    println!("| measure | before | Redis down | after |");
    println!("|---|---:|---:|---:|");
    println!(
        "| origin-queue max RSS (MiB) | {} | {} | {} |",
        rss(&before),
        rss(&down),
        rss(&after)
    );
    println!(
        "| origin-queue max threads | {} | {} | {} |",
        threads(&before),
        threads(&down),
        threads(&after)
    );
    println!(
        "| origin-queue max open descriptors | {} | {} | {} |",
        fds(&before),
        fds(&down),
        fds(&after)
    );
    println!(
        "\nwrk: {} responses ({:.0}/s), {} non-2xx, {} without an answer (timeouts, resets), p99 {:.1} ms, slowest {:.0} ms",
        load.requests, load.rps, load.non_2xx, load.socket_errors, load.p99_ms, load.max_ms
    );
    println!(
        "status probe while Redis was down: {during_503} of {} answered 503 + Retry-After, slowest {slowest_during:.0} ms; first 200 {} after Redis was started; {} of {} polls after that answered 200",
        during.len(),
        back.map_or("never".into(), |b| format!("{b:.1} s")),
        after_back.iter().filter(|p| p.status == 200).count(),
        after_back.len()
    );
    println!(
        "pass holder through Envoy every 50 ms: {holders_ok} of {} answered 200\n",
        holders.len()
    );

    let mut v = Verdict(true);
    v.check(
        !during.is_empty() && during_503 == during.len(),
        "every status poll during the outage got 503 + Retry-After",
    );
    v.check(
        slowest_during < 1500.0,
        "none took longer than 1.5 s (Redis timeout 200 ms)",
    );
    v.check(
        load.socket_errors == 0,
        "no request of the load went unanswered",
    );
    v.check(
        holders_ok == holders.len(),
        "every pass holder got in through Envoy",
    );
    v.check(
        back.is_some_and(|b| b < 15.0) && after_back.iter().all(|p| p.status == 200),
        "status recovered by itself within 15 s and stayed up",
    );
    v.check(
        threads(&down) <= threads(&before) && fds(&down) <= fds(&before) + 10,
        "no thread or descriptor pile-up while Redis was down",
    );
    v.check(
        rss(&down) <= rss(&before) + 32 && rss(&after) <= rss(&before) + 32,
        "memory flat (within 32 MiB of before)",
    );
    v.0
}
