//! The autopilot through the real stack (`make up`'s Envoy with the filter, origin-queue,
//! Redis Cluster, and the demo backend with a capacity knob): the admission rate follows
//! the backend's capacity as it halves and comes back.
//!
//! `cargo run -q -p wr-tools --bin autopilot-stack [-- CSV]` (about 5 minutes; CSV: one
//! row per second for `scripts/plot-autopilot`).
//!
//! A line of 6,000 visitors; every visitor admitted makes 10 requests to the backend
//! through Envoy over the next 30 s (one every 3 s), so the backend's load follows the
//! admission rate. The backend serves 100 requests/s, 50 from 90 s to 180 s, 100 again
//! until 270 s. The event's autopilot: p95 ≤ 300 ms, rate between 1 and 20 per second,
//! starting from the configured 5 per second. A visitor's first request comes within 3 s
//! of their admission (spread evenly), then one every 3 s.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use wr_tests::http;
use wr_tests::processes::Stack;

const LINE: usize = 6_000;
const REQUESTS_PER_VISITOR: u64 = 10;
const EVERY_MS: u64 = 3_000;
const WORKERS: usize = 96;
const PASSES: usize = 64;
const PHASES: [(u64, u32); 3] = [(0, 100), (90, 50), (180, 100)];
const RUN_SECS: u64 = 270;

/// Requests due, by when (ms since the start).
#[derive(Default)]
struct Due {
    heap: Mutex<BinaryHeap<Reverse<u64>>>,
    ready: Condvar,
}

/// Response times of one second, ms.
type Second = Vec<f64>;

fn main() {
    let csv_path = std::env::args().nth(1);
    eprintln!("starting the stack (debug builds)…");
    let stack = Stack::up();
    let config = json!({
        "rate_per_second": 5.0, "burst": 5, "max_active": 1_000_000, "session_seconds": 600,
        "claim_seconds": 600, "abandon_seconds": 3600, "opens_at": 0, "closes_at": 4_000_000_000u64,
        "autopilot": {"target_p95_ms": 300, "min_rate": 1.0, "max_rate": 20.0},
    });
    // Joined paused, so that the line is whole when admission starts.
    let put = stack.admin("PUT", "/v1/admin/events/demo", &config);
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    stack.admin("POST", "/v1/admin/events/demo/pause", &json!({}));
    eprintln!("joining {LINE} visitors…");
    for i in 0..LINE {
        // origin-queue believes the stack's own address about the client (trusted proxy).
        let client = Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8).to_string();
        let r = http::request(
            stack.queue,
            "POST",
            "/v1/events/demo/join",
            &[("x-forwarded-for", client.as_bytes())],
            b"",
        )
        .expect("join");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let capacity = |n: u32| {
        let path = format!("/__demo/capacity?per_second={n}");
        http::request(stack.backend, "POST", &path, &[], b"").expect("capacity");
    };
    capacity(PHASES[0].1);

    let due = Arc::new(Due::default());
    let stop = Arc::new(AtomicBool::new(false));
    let seconds: Arc<Mutex<Vec<Second>>> =
        Arc::new(Mutex::new(vec![Vec::new(); RUN_SECS as usize + 60]));
    let start = Instant::now();
    let cookies: Arc<Vec<String>> = Arc::new(
        (0..PASSES)
            .map(|i| format!("wr_pass={}", stack.pass("demo", &format!("shopper-{i}"))))
            .collect(),
    );
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (due, stop, seconds, cookies, edge) = (
                due.clone(),
                stop.clone(),
                seconds.clone(),
                cookies.clone(),
                stack.edge,
            );
            std::thread::spawn(move || {
                let mut n = w;
                let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + (w % 200) as u8));
                while !stop.load(Ordering::Relaxed) {
                    if next_due(&due, start, &stop).is_none() {
                        return;
                    }
                    n += WORKERS;
                    let cookie = &cookies[n % PASSES];
                    let sent = Instant::now();
                    let ok = http::get_from(
                        from,
                        edge,
                        "/reserve?tag=autopilot-stack",
                        &[("cookie", cookie.as_bytes())],
                    )
                    .is_ok();
                    if ok {
                        let second = start.elapsed().as_secs() as usize;
                        let ms = sent.elapsed().as_secs_f64() * 1000.0;
                        if let Some(s) = seconds.lock().unwrap().get_mut(second) {
                            s.push(ms);
                        }
                    }
                }
            })
        })
        .collect();

    stack.admin("POST", "/v1/admin/events/demo/resume", &json!({}));
    let mut admitted_before = 0u64;
    let mut rows = Vec::new();
    let mut phase = 0;
    while start.elapsed() < Duration::from_secs(RUN_SECS) {
        let t = start.elapsed().as_secs();
        if phase + 1 < PHASES.len() && t >= PHASES[phase + 1].0 {
            phase += 1;
            capacity(PHASES[phase].1);
            eprintln!("{t} s: backend capacity {} requests/s", PHASES[phase].1);
        }
        let stats = stack
            .admin("GET", "/v1/admin/events/demo/stats", &json!({}))
            .json();
        let admitted = stats["admitted_total"].as_u64().unwrap_or(0);
        let now_ms = start.elapsed().as_millis() as u64;
        {
            let mut heap = due.heap.lock().unwrap();
            let new = admitted.saturating_sub(admitted_before);
            for i in 0..new {
                let offset = i * EVERY_MS / new.max(1);
                for k in 0..REQUESTS_PER_VISITOR {
                    heap.push(Reverse(now_ms + offset + k * EVERY_MS));
                }
            }
        }
        if t % 30 == 0 {
            eprintln!(
                "{t} s: rate {} /s, {} waiting, autopilot {}",
                stats["rate_in_force"], stats["waiting"], stats["autopilot"]
            );
        }
        due.ready.notify_all();
        admitted_before = admitted;
        let p95 = {
            let all = seconds.lock().unwrap();
            let previous = t.saturating_sub(1) as usize;
            percentile(&all[previous], 0.95)
        };
        rows.push((
            t,
            stats["rate_in_force"].as_f64().unwrap_or(0.0),
            p95,
            stats["waiting"].as_u64().unwrap_or(0),
            PHASES[phase].1,
            stats["autopilot"]["reason"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        ));
        std::thread::sleep(Duration::from_secs(1));
    }
    stop.store(true, Ordering::Relaxed);
    due.ready.notify_all();
    for w in workers {
        let _ = w.join();
    }
    capacity(0);

    println!("| seconds | backend capacity (req/s) | mean admission rate (/s) | backend p95 seen by visitors (ms, median of the seconds) |");
    println!("|---|---:|---:|---:|");
    for (i, (from, cap)) in PHASES.iter().enumerate() {
        let to = PHASES.get(i + 1).map_or(RUN_SECS, |p| p.0);
        let in_phase: Vec<_> = rows.iter().filter(|r| r.0 >= *from && r.0 < to).collect();
        let rate = in_phase.iter().map(|r| r.1).sum::<f64>() / in_phase.len().max(1) as f64;
        let mut p95s: Vec<f64> = in_phase
            .iter()
            .map(|r| r.2)
            .filter(|p| p.is_finite())
            .collect();
        p95s.sort_by(f64::total_cmp);
        let median = p95s.get(p95s.len() / 2).copied().unwrap_or(f64::NAN);
        println!("| {from}–{to} | {cap} | {rate:.1} | {median:.0} |");
    }
    if let Some(path) = csv_path {
        let mut csv = String::from("t_s,rate_per_s,p95_ms,waiting,capacity_rps,reason\n");
        for (t, rate, p95, waiting, cap, reason) in &rows {
            csv.push_str(&format!(
                "{t},{rate:.2},{p95:.1},{waiting},{cap},{reason}\n"
            ));
        }
        std::fs::write(&path, csv).expect("write the CSV");
        eprintln!("wrote {path}");
    }
}

/// Waits for the next request due; `None` once stopped.
fn next_due(due: &Due, start: Instant, stop: &AtomicBool) -> Option<u64> {
    let mut heap = due.heap.lock().unwrap();
    loop {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let now = start.elapsed().as_millis() as u64;
        match heap.peek() {
            Some(Reverse(at)) if *at <= now => {
                let at = *at;
                heap.pop();
                return Some(at);
            }
            Some(Reverse(at)) => {
                let wait = Duration::from_millis(at - now);
                heap = due.ready.wait_timeout(heap, wait).unwrap().0;
            }
            None => {
                heap = due
                    .ready
                    .wait_timeout(heap, Duration::from_millis(200))
                    .unwrap()
                    .0;
            }
        }
    }
}

fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}
