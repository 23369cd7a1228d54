//! What the scenarios share: verdicts, load and probe threads, process figures.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use wr_tests::http;
use wr_tests::wrk::{Wrk, WrkResult};

/// Checks a promise, prints it, and remembers a broken one.
pub struct Verdict(pub bool);

impl Verdict {
    pub fn check(&mut self, ok: bool, what: &str) {
        println!("- {} {what}", if ok { "✔" } else { "✘" });
        self.0 &= ok;
    }
}

/// A scratch directory for load scripts, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("wr-chaos-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes a wrk script sending `method path` with `headers` on every request.
    pub fn script(
        &self,
        name: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> PathBuf {
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
pub fn wrk_in_background(
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
pub struct Probe {
    /// Seconds since the scenario's start.
    pub at: f64,
    pub status: u16,
    pub millis: f64,
    pub retry_after: bool,
    /// The `X-WR-Ticket` of a 200 answer, if it carried one.
    pub ticket: Option<String>,
}

/// Sends `request` every `every` until `stop`, recording each answer.
pub fn probe(
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
                retry_after: r
                    .as_ref()
                    .is_some_and(|r| r.header("retry-after").is_some()),
                ticket: r
                    .filter(|r| r.status == 200)
                    .and_then(|r| r.header("x-wr-ticket").map(str::to_owned)),
            });
            thread::sleep(every);
        }
        seen
    })
}

/// Resident memory (KiB), threads and open descriptors of a process.
#[derive(Clone, Copy, Default)]
pub struct Footprint {
    pub rss_kib: u64,
    pub threads: u64,
    pub fds: u64,
}

pub fn footprint(pid: u32) -> Footprint {
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
pub fn sample(
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
pub fn cpu_seconds(pid: u32) -> f64 {
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

pub fn between<T: Clone>(items: &[(f64, T)], from: f64, to: f64) -> Vec<T> {
    items
        .iter()
        .filter(|(at, _)| *at >= from && *at < to)
        .map(|(_, x)| x.clone())
        .collect()
}

pub fn max_of(values: impl Iterator<Item = u64>) -> u64 {
    values.max().unwrap_or(0)
}

pub fn sleep_until(started: Instant, second: f64) {
    let target = started + Duration::from_secs_f64(second);
    if let Some(left) = target.checked_duration_since(Instant::now()) {
        thread::sleep(left);
    }
}

pub fn pid_file(dir: &Path, name: &str) -> u32 {
    std::fs::read_to_string(dir.join(format!("{name}.pid")))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .expect("pid file")
}
