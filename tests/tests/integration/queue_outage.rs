//! Redis Cluster down: origin-queue answers 503 + Retry-After within its bounded
//! timeout, never hangs, and recovers by itself when Redis returns. Redis stalled
//! under many requests: beyond the in-flight cap, requests are shed at once.

use std::time::{Duration, Instant};

use serde_json::json;
use wr_tests::fixtures::{now, wait_until};
use wr_tests::http;
use wr_tests::processes::{OriginQueue, RedisCluster};
use wr_tests::redis_nodes::redis_cli;

/// The in-flight cap this test gives origin-queue.
const CAP: usize = 4;

#[test]
fn redis_outage_gives_fast_503s_and_recovery() {
    let cluster = RedisCluster::start();
    let cap = CAP.to_string();
    let q = OriginQueue::start(
        &cluster.nodes,
        &[("WR_REDIS_TIMEOUT_MS", "200"), ("WR_MAX_IN_FLIGHT", &cap)],
    );
    put_later(&q, "t-outage", 60);
    let ticket = join(&q, "t-outage");

    cluster.stop();
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let r = status(&q, "t-outage", &ticket);
        slowest = slowest.max(started.elapsed());
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (503, Some("QUEUE_UNAVAILABLE"))
        );
        assert_eq!(r.header("retry-after"), Some("2"));
    }
    assert!(
        slowest < Duration::from_millis(1500),
        "a request took {slowest:?} while Redis was down"
    );
    assert_eq!(http::get(q.addr, "/readyz", &[]).unwrap().status, 503);
    assert_eq!(
        http::get(q.addr, "/healthz", &[]).unwrap().status,
        200,
        "liveness does not depend on Redis"
    );

    cluster.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    let position = loop {
        let r = status(&q, "t-outage", &ticket);
        if r.status == 200 {
            break r.json()["position"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "not recovered 30 s after Redis came back (last: {})",
            r.status
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(position, 1, "the place survived the outage");

    sheds_beyond_the_in_flight_cap(&cluster, &q, &ticket);
}

/// Every node paused for 800 ms while 24 status calls arrive at once: CAP of them wait
/// for Redis (503 `QUEUE_UNAVAILABLE` after the 200 ms timeout), the rest are shed at
/// once (503 `QUEUE_BUSY`); all carry `Retry-After`, and the service serves afterwards.
/// Creates `event` opening in 50 minutes (nobody is admitted during a test), with
/// `abandon_seconds`.
fn put_later(q: &OriginQueue, event: &str, abandon_seconds: u64) {
    let t = now();
    q.put_event(
        event,
        &json!({"rate_per_second": 1, "burst": 1, "max_active": 10, "session_seconds": 60,
            "claim_seconds": 30, "abandon_seconds": abandon_seconds,
            "opens_at": t + 3000, "closes_at": t + 7200}),
    );
}

/// Joins `event`; the new visitor's ticket.
fn join(q: &OriginQueue, event: &str) -> String {
    q.join(event).header("x-wr-ticket").unwrap().to_owned()
}

/// An event id whose keys live on another master than `event`'s, and that master's port.
fn event_on_another_master(cluster: &RedisCluster, event: &str) -> (String, String) {
    use wr_tests::redis_nodes::master_for;
    let key = |event: &str| format!("{{wr:{event}}}:cfg");
    let taken = master_for(&cluster.nodes, &key(event));
    (0..50)
        .map(|i| format!("t-blocked-{i}"))
        .map(|e| {
            let m = master_for(&cluster.nodes, &key(&e));
            (e, m)
        })
        .find(|(_, m)| *m != taken)
        .expect("an event on another master")
}

/// The status in `event` of the visitor holding `ticket`.
fn status(q: &OriginQueue, event: &str, ticket: &str) -> http::Response {
    http::get(
        q.addr,
        &format!("/v1/events/{event}/status"),
        &[("x-wr-ticket", ticket.as_bytes())],
    )
    .unwrap()
}

fn sheds_beyond_the_in_flight_cap(cluster: &RedisCluster, q: &OriginQueue, ticket: &str) {
    for node in &cluster.nodes {
        let port = node.rsplit(':').next().unwrap();
        assert_eq!(redis_cli(port, &["CLIENT", "PAUSE", "800", "ALL"]), "OK");
    }
    let answers: Vec<(u16, Option<String>, bool, Duration)> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..24)
            .map(|_| {
                s.spawn(|| {
                    let started = Instant::now();
                    let r = status(q, "t-outage", ticket);
                    let retry = r.header("retry-after").is_some();
                    (r.status, r.error_code(), retry, started.elapsed())
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let count = |code: &str| {
        answers
            .iter()
            .filter(|(status, c, retry, _)| *status == 503 && c.as_deref() == Some(code) && *retry)
            .count()
    };
    let (busy, unavailable) = (count("QUEUE_BUSY"), count("QUEUE_UNAVAILABLE"));
    assert_eq!(
        busy + unavailable,
        answers.len(),
        "every call answered 503 + Retry-After while Redis was paused: {answers:?}"
    );
    assert!(
        (1..=CAP).contains(&unavailable) && busy >= answers.len() - CAP,
        "at most {CAP} calls waited for Redis, the rest were shed: {answers:?}"
    );
    let slowest_shed = answers
        .iter()
        .filter(|a| a.1.as_deref() == Some("QUEUE_BUSY"))
        .map(|a| a.3)
        .max()
        .unwrap();
    assert!(
        slowest_shed < Duration::from_millis(190),
        "shedding does not wait for the Redis timeout (slowest {slowest_shed:?})"
    );

    let serving = wait_until(Duration::from_secs(5), || {
        status(q, "t-outage", ticket).status == 200
    });
    assert!(serving, "serving again after the pause");
}

/// Slow bodies cannot hold the in-flight caps (slowloris): requests whose body never
/// arrives take no place under a cap, honest joins and polls are served meanwhile, and
/// the slow ones get 408 `BODY_TIMEOUT` once the body deadline has passed.
#[test]
fn slow_bodies_do_not_hold_the_in_flight_caps() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    let cap = CAP.to_string();
    let q = OriginQueue::start(
        wr_tests::processes::redis_cluster(),
        &[("WR_MAX_IN_FLIGHT", &cap)],
    );
    put_later(&q, "t-slow", 60);
    let ticket = join(&q, "t-slow");

    // 4 x CAP connections per cap send their headers and promise a body that never comes.
    let slow: Vec<TcpStream> = ["join", "leave"]
        .iter()
        .flat_map(|route| std::iter::repeat_n(*route, 4 * CAP))
        .map(|route| {
            let mut c = TcpStream::connect(q.addr).unwrap();
            write!(
                c,
                "POST /v1/events/t-slow/{route} HTTP/1.1\r\nhost: q\r\nx-wr-ticket: {ticket}\r\ncontent-length: 10\r\n\r\n"
            )
            .unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    for _ in 0..2 * CAP {
        let r = status(&q, "t-slow", &ticket);
        assert_eq!(r.status, 200, "a poll was refused: {:?}", r.error_code());
        let r = http::request(q.addr, "POST", "/v1/events/t-slow/join", &[], b"").unwrap();
        assert_eq!(r.status, 200, "a join was refused: {:?}", r.error_code());
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    for mut c in slow {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        assert!(
            answer.starts_with("HTTP/1.1 408") && answer.contains("BODY_TIMEOUT"),
            "{answer}"
        );
    }
}

/// A visitor whose polls the service cannot serve is not swept out of the line as
/// abandoned, however long that lasts: here every poll is shed (the poll cap, 1, is held
/// by calls for another event whose Redis master refuses writes) until the visitor has
/// gone 8.8 s without a served poll, longer than the 5 to 7.5 s after which a silent
/// visitor leaves, while admission steps go on. Once polls are served again, a visitor
/// who really stopped polling still leaves.
///
/// Every phase ends on a condition, not on a clock: the other master stays paused
/// (writes only, so that `CLIENT UNPAUSE` ends it) until the silence is long enough,
/// and a poll that slips through the cap restarts the count.
#[test]
fn visitors_whose_polls_fail_are_not_swept_as_abandoned() {
    use std::sync::atomic::{AtomicBool, Ordering};

    const SILENCE: Duration = Duration::from_millis(8800);
    let cluster = RedisCluster::start();
    let q = OriginQueue::start(
        &cluster.nodes,
        &[("WR_MAX_IN_FLIGHT", "1"), ("WR_REDIS_TIMEOUT_MS", "300")],
    );
    let (blocked, blocked_master) = event_on_another_master(&cluster, "t-held");
    put_later(&q, "t-held", 5);
    put_later(&q, &blocked, 5);
    let (kept, gone, other) = (join(&q, "t-held"), join(&q, "t-held"), join(&q, &blocked));

    // The other event's master stops taking writes (the status script writes its poll
    // marks); four pollers of that event keep the poll cap full with calls that wait for
    // the Redis timeout.
    assert_eq!(
        redis_cli(&blocked_master, &["CLIENT", "PAUSE", "60000", "WRITE"]),
        "OK"
    );
    let stop = AtomicBool::new(false);
    let (shed, slipped) = std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    status(&q, &blocked, &other);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(45);
        let mut last_served = Instant::now();
        let (mut shed, mut slipped) = (0, 0);
        while last_served.elapsed() < SILENCE {
            assert!(
                Instant::now() < deadline,
                "the visitor's polls were never shed for {SILENCE:?} ({shed} shed, {slipped} served)"
            );
            let sent = Instant::now();
            match status(&q, "t-held", &kept).status {
                503 => shed += 1,
                200 => {
                    slipped += 1;
                    last_served = sent;
                }
                other => panic!("unexpected {other}"),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        stop.store(true, Ordering::Relaxed);
        assert_eq!(redis_cli(&blocked_master, &["CLIENT", "UNPAUSE"]), "OK");
        (shed, slipped)
    });
    eprintln!("polls of the kept visitor: {shed} shed, {slipped} slipped through");

    // Not swept, though no poll of theirs left a mark for longer than the abandonment
    // time allows: the first poll served again finds them in line, first.
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = loop {
        let r = status(&q, "t-held", &kept);
        if r.status == 200 {
            break r;
        }
        assert!(Instant::now() < deadline, "polls were never served again");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(r.json()["status"], "waiting", "{:?}", r.json());
    assert_eq!(r.json()["position"], 1);

    // Polls are served again: the visitor who never polled leaves once the window no
    // longer holds a failed poll; the one who kept polling stays.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = status(&q, "t-held", &kept);
        assert_eq!(r.json()["status"], "waiting", "{:?}", r.json());
        if r.json()["waiting"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the silent visitor never left: {:?}",
            r.json()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(status(&q, "t-held", &gone).json()["status"], "expired");
}

/// One event's Redis master stalls: that event's polls wait for the Redis timeout (1 s
/// here), and every other event's polls are answered at their usual speed meanwhile,
/// because status polls are batched per event with one call in flight each. That holds
/// from the first poll on, when the healthy master does not know the status script yet
/// (it is loaded there alone, not on every master).
#[test]
fn a_stalled_master_holds_up_only_its_own_events_polls() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let cluster = RedisCluster::start();
    let q = OriginQueue::start(&cluster.nodes, &[("WR_REDIS_TIMEOUT_MS", "1000")]);
    let (blocked, blocked_master) = event_on_another_master(&cluster, "t-free");
    put_later(&q, "t-free", 60);
    put_later(&q, &blocked, 60);
    let (free, other) = (join(&q, "t-free"), join(&q, &blocked));

    assert_eq!(
        redis_cli(&blocked_master, &["CLIENT", "PAUSE", "4000", "ALL"]),
        "OK"
    );
    let stop = AtomicBool::new(false);
    let (free_answers, blocked_answers) = std::thread::scope(|s| {
        let pollers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut answers = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        answers.push(status(&q, &blocked, &other).status);
                    }
                    answers
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let mut answers = Vec::new();
        let until = Instant::now() + Duration::from_millis(2500);
        while Instant::now() < until {
            let started = Instant::now();
            let r = status(&q, "t-free", &free);
            answers.push((r.status, started.elapsed()));
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        let blocked: Vec<u16> = pollers
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect();
        (answers, blocked)
    });
    assert!(
        blocked_answers.contains(&503),
        "precondition: the stalled event's polls failed: {blocked_answers:?}"
    );
    let slowest = free_answers.iter().map(|a| a.1).max().unwrap();
    assert!(
        free_answers.iter().all(|a| a.0 == 200) && slowest < Duration::from_millis(400),
        "the other event's polls waited for the stalled master (slowest {slowest:?}): {free_answers:?}"
    );
}
