//! The Redis master that holds an event is killed (SIGKILL) while visitors keep joining:
//! its replica takes over, origin-queue keeps serving after a short run of fast 503s,
//! no acknowledged join is lost and the line keeps its order.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use wr_tests::fixtures::wait_until;
use wr_tests::http;
use wr_tests::processes::{OriginQueue, RedisCluster};
use wr_tests::redis_nodes::{master_for, pid_of, redis_cli, replica_of, wait_replica_online};

const EVENT: &str = "t-failover";

/// One join as the load saw it.
struct Attempt {
    at: Instant,
    status: u16,
    ticket: Option<String>,
}

#[test]
fn killing_the_master_loses_no_acknowledged_join() {
    let cluster = RedisCluster::start();
    let limits = "1000000:1000000";
    let q = OriginQueue::start(
        &cluster.nodes,
        &[
            ("WR_REDIS_TIMEOUT_MS", "300"),
            ("WR_CLIENT_RATE_LIMIT", limits),
            ("WR_VISITOR_RATE_LIMIT", limits),
        ],
    );
    q.put_scheduled_event(EVENT);
    let master = master_for(&cluster.nodes, &format!("{{wr:{EVENT}}}:q"));
    wait_replica_online(&master);

    // Load: one client joining back to back, every answer recorded in order.
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(Mutex::new(Vec::<Attempt>::new()));
    let loader = {
        let (stop, attempts, addr) = (stop.clone(), attempts.clone(), q.addr);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let r = http::request(addr, "POST", &format!("/v1/events/{EVENT}/join"), &[], b"");
                let (status, ticket) = match r {
                    Ok(r) => (r.status, r.header("x-wr-ticket").map(str::to_owned)),
                    Err(_) => (0, None),
                };
                attempts.lock().unwrap().push(Attempt {
                    at: Instant::now(),
                    status,
                    ticket: (status == 200).then_some(ticket).flatten(),
                });
                thread::sleep(Duration::from_millis(2));
            }
        })
    };
    // The kill lands on a line under load: once 200 joins were acknowledged.
    assert!(wait_until(Duration::from_secs(20), || {
        attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.status == 200)
            .count()
            >= 200
    }));
    let pid = pid_of(&master);
    let killed_at = Instant::now();
    assert!(Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap()
        .success());

    // Wait for recovery: three seconds of only successes after the kill, at most 30 s.
    let recovered = loop {
        thread::sleep(Duration::from_millis(250));
        let a = attempts.lock().unwrap();
        let since_kill: Vec<&Attempt> = a.iter().filter(|x| x.at > killed_at).collect();
        let last_failure = since_kill
            .iter()
            .rev()
            .find(|x| x.status != 200)
            .map(|x| x.at);
        let calm_since = last_failure.unwrap_or(killed_at);
        if since_kill
            .iter()
            .any(|x| x.at > calm_since + Duration::from_secs(3))
        {
            break true;
        }
        if killed_at.elapsed() > Duration::from_secs(30) {
            break false;
        }
    };
    stop.store(true, Ordering::Relaxed);
    loader.join().unwrap();
    let attempts = std::mem::take(&mut *attempts.lock().unwrap());
    assert!(
        recovered,
        "origin-queue did not recover within 30 s of the failover"
    );

    let failures: Vec<&Attempt> = attempts.iter().filter(|a| a.status != 200).collect();
    let odd: Vec<u16> = failures
        .iter()
        .map(|a| a.status)
        .filter(|s| *s != 503)
        .collect();
    assert!(odd.is_empty(), "answers other than 200 and 503: {odd:?}");
    let outage = match (failures.first(), failures.last()) {
        (Some(first), Some(last)) => last.at.duration_since(first.at),
        _ => Duration::ZERO,
    };

    // Every acknowledged join is still in line, in the order it was acknowledged.
    let tickets: Vec<&String> = attempts.iter().filter_map(|a| a.ticket.as_ref()).collect();
    let mut lost = 0;
    let mut inversions = 0;
    let mut last_position = 0;
    for ticket in &tickets {
        let r = http::get(
            q.addr,
            &format!("/v1/events/{EVENT}/status"),
            &[("x-wr-ticket", ticket.as_bytes())],
        )
        .unwrap();
        match r.json()["position"].as_u64() {
            Some(p) => {
                if p <= last_position {
                    inversions += 1;
                }
                last_position = p;
            }
            None => lost += 1,
        }
    }
    eprintln!(
        "failover: {} joins acknowledged, {} answered 503 over {:.1} s, {lost} lost, {inversions} out of order",
        tickets.len(),
        failures.len(),
        outage.as_secs_f64()
    );
    assert_eq!(lost, 0, "acknowledged joins lost in the failover");
    assert_eq!(inversions, 0, "the line's order changed");
    assert!(
        outage < Duration::from_secs(15),
        "503s for {outage:?} after the master was killed"
    );
}

/// With `WR_JOIN_REPLICAS=1` a join is acknowledged only once a replica holds it: with
/// the event's replica gone, joins get a fast 503 instead of a promise Redis could
/// break; with it back, joins are acknowledged again.
#[test]
fn with_join_replicas_a_join_is_acknowledged_only_once_replicated() {
    let cluster = RedisCluster::start();
    let q = OriginQueue::start(
        &cluster.nodes,
        &[("WR_REDIS_TIMEOUT_MS", "300"), ("WR_JOIN_REPLICAS", "1")],
    );
    let event = "t-replicated";
    q.put_scheduled_event(event);
    let join = || {
        let started = Instant::now();
        let r = q.join(event);
        (r, started.elapsed())
    };
    // A new cluster's replicas finish their first sync a moment after it reports ok.
    let deadline = Instant::now() + Duration::from_secs(15);
    while join().0.status != 200 {
        assert!(
            Instant::now() < deadline,
            "a replicated join is never acknowledged"
        );
        thread::sleep(Duration::from_millis(200));
    }

    let master = master_for(&cluster.nodes, &format!("{{wr:{event}}}:q"));
    let replica = replica_of(&master);
    assert!(Command::new("kill")
        .args(["-9", &pid_of(&replica)])
        .status()
        .unwrap()
        .success());
    // The master has seen its replica go (the kernel closed the link at once).
    assert!(wait_until(Duration::from_secs(5), || {
        redis_cli(&master, &["INFO", "replication"]).contains("connected_slaves:0")
    }));
    let (r, took) = join();
    assert_eq!(r.status, 503, "no replica: the join is not acknowledged");
    assert!(r.header("retry-after").is_some());
    assert!(took < Duration::from_millis(1500), "503 took {took:?}");

    cluster.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    while join().0.status != 200 {
        assert!(
            Instant::now() < deadline,
            "joins not acknowledged 30 s after the replica returned"
        );
        thread::sleep(Duration::from_millis(250));
    }
}
