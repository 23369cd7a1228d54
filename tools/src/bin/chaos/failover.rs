//! Scenario `failover`: the event's Redis master killed under a full join load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wr_tests::http;
use wr_tests::processes::{origin_queue_release_bin, OriginQueue, RedisCluster};
use wr_tests::redis_nodes::{master_for, pid_of, redis_cli, wait_replica_online};

use super::support::*;
use super::UNLIMITED;

/// The event's Redis master killed while 50 connections join as fast as they can: fast
/// 503s only while the replica takes over, and no acknowledged join lost.
pub fn failover() -> bool {
    const EVENT: &str = "chaos-failover";
    const KILL_AT: f64 = 8.0;
    const LOAD_SECS: u64 = 25;
    let cluster = RedisCluster::start();
    let q = OriginQueue::start_binary(
        &origin_queue_release_bin(),
        &cluster.nodes,
        &[
            ("WR_REDIS_TIMEOUT_MS", "300"),
            ("WR_CLIENT_RATE_LIMIT", UNLIMITED),
            ("WR_VISITOR_RATE_LIMIT", UNLIMITED),
            ("WR_LOG", "error"),
        ],
    );
    q.put_scheduled_event(EVENT);
    let qkey = format!("{{wr:{EVENT}}}:q");
    let master = master_for(&cluster.nodes, &qkey);
    wait_replica_online(&master);
    let scratch = Scratch::new("failover");
    let join_path = format!("/v1/events/{EVENT}/join");
    let script = scratch.script("join.lua", "POST", &join_path, &[]);

    let started = Instant::now();
    let load = wrk_in_background(format!("http://{}", q.addr), script, 50, LOAD_SECS);
    // One more client joins back to back and keeps every ticket, for the exact check.
    let stop = Arc::new(AtomicBool::new(false));
    let addr = q.addr;
    let recorder = probe(started, Duration::from_millis(5), stop.clone(), move || {
        http::request(addr, "POST", &join_path, &[], b"").ok()
    });
    sleep_until(started, KILL_AT);
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid_of(&master)])
        .status()
        .is_ok_and(|s| s.success());
    let load = load.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let recorded = recorder.join().unwrap();

    let failures: Vec<&Probe> = recorded.iter().filter(|p| p.status != 200).collect();
    let odd = failures.iter().filter(|p| p.status != 503).count();
    let window = match (failures.first(), failures.last()) {
        (Some(a), Some(b)) => b.at - a.at,
        _ => 0.0,
    };
    let tickets: Vec<&String> = recorded.iter().filter_map(|p| p.ticket.as_ref()).collect();
    let (mut lost, mut inversions, mut last) = (0, 0, 0);
    for ticket in &tickets {
        let r = http::get(
            q.addr,
            &format!("/v1/events/{EVENT}/status"),
            &[("x-wr-ticket", ticket.as_bytes())],
        );
        match r.ok().and_then(|r| r.json()["position"].as_u64()) {
            Some(p) => {
                inversions += usize::from(p <= last);
                last = p;
            }
            None => lost += 1,
        }
    }
    let acknowledged = load.requests - load.non_2xx + tickets.len() as u64;
    let new_master = master_for(&cluster.nodes, &qkey);
    let in_line: u64 = redis_cli(&new_master, &["ZCARD", &qkey])
        .trim()
        .parse()
        .unwrap_or(0);

    println!("The event's master (port {master}) was killed with SIGKILL {KILL_AT:.0} s into {LOAD_SECS} s of wrk joining with 50 connections (release build, Redis timeout 300 ms); one more client joined back to back and kept every ticket.\n");
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| wrk joins answered / per second | {} / {:.0} |",
        load.requests, load.rps
    );
    println!("| wrk joins answered non-2xx | {} |", load.non_2xx);
    println!(
        "| wrk requests without an answer (timeouts, resets) | {} |",
        load.socket_errors
    );
    println!(
        "| wrk join p99 / slowest | {:.1} ms / {:.0} ms |",
        load.p99_ms, load.max_ms
    );
    println!(
        "| recording client: 503s, and the seconds from the first to the last | {} over {window:.1} s |",
        failures.len()
    );
    println!("| joins acknowledged (wrk 2xx + recorder) | {acknowledged} |");
    println!("| places in line afterwards (ZCARD on the new master {new_master}) | {in_line} |");
    println!(
        "| recorder's acknowledged joins lost / out of order | {lost} / {inversions} of {} |\n",
        tickets.len()
    );

    let mut v = Verdict(true);
    v.check(killed && new_master != master, "a replica took over");
    v.check(odd == 0, "every failure the recorder saw was a 503");
    v.check(load.socket_errors == 0, "no wrk request went unanswered");
    v.check(window < 10.0, "503s lasted less than 10 s");
    v.check(
        in_line >= acknowledged,
        "at least as many places in line as joins acknowledged",
    );
    v.check(
        lost == 0 && inversions == 0,
        "each recorded ticket still in line, in order",
    );
    v.0
}
