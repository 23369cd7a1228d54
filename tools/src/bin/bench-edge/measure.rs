//! One load run: `wrk` against one Envoy, and what it cost that Envoy in CPU.

use std::path::Path;
use std::process::Command;

use wr_tests::processes::command_on_cpu;
use wr_tests::wrk;

/// What one run measured.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Responses per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Envoy's CPU time (user + system, all threads) per response, µs: what a request
    /// costs, whatever else the machine was doing meanwhile.
    pub cpu_us: f64,
}

/// How wrk drives one run.
pub struct Load<'a> {
    /// The URL.
    pub url: &'a str,
    /// A `cookie` header for every request, if any.
    pub cookie: Option<&'a str>,
    /// A wrk Lua script that shapes each request instead (see `distinct_passes`).
    pub script: Option<&'a Path>,
    /// wrk threads (`-t`).
    pub threads: u32,
    /// Seconds.
    pub seconds: u32,
    /// The CPU wrk is pinned to, if any.
    pub cpu: Option<u32>,
}

/// Runs wrk (50 connections) against the Envoy with process id `envoy_pid`.
pub fn run(load: &Load, envoy_pid: u32) -> Run {
    let mut cmd = command_on_cpu("wrk", load.cpu);
    cmd.args([
        &format!("-t{}", load.threads),
        "-c50",
        &format!("-d{}s", load.seconds),
        "--latency",
    ]);
    if let Some(c) = load.cookie {
        cmd.args(["-H", &format!("cookie: {c}")]);
    }
    if let Some(script) = load.script {
        cmd.arg("-s").arg(script);
    }
    cmd.args(["-H", "accept: application/json", load.url]);
    let cpu_before = cpu_seconds(envoy_pid);
    let out = cmd.output().expect("run wrk (apt-get install wrk)");
    let cpu = cpu_seconds(envoy_pid) - cpu_before;
    let summary = wrk::parse(&String::from_utf8_lossy(&out.stdout));
    Run {
        rps: summary.rps,
        p50_ms: summary.p50_ms,
        p99_ms: summary.p99_ms,
        cpu_us: cpu * 1e6 / (summary.requests as f64).max(1.0),
    }
}

/// User + system CPU seconds of a process so far (`/proc/<pid>/stat`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The median (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Pins every thread of process `pid` to `cpu`.
pub fn pin(pid: u32, cpu: u32) {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run taskset");
    assert!(status.success(), "taskset failed for pid {pid}");
}

/// A wrk script sending each request with the next of `cookies` (then round again):
/// the distinct-pass flood, where every pass is new to the filter's cache.
pub fn cookie_script(dir: &Path, cookies: &[String]) -> std::path::PathBuf {
    let mut lua = String::from("local cookies = {\n");
    for c in cookies {
        lua.push_str(&format!("  \"{c}\",\n"));
    }
    lua.push_str(
        "}\nlocal i = 0\nrequest = function()\n  i = i % #cookies + 1\n  \
         return wrk.format(nil, nil, {[\"cookie\"] = cookies[i], [\"accept\"] = \"application/json\"})\nend\n",
    );
    let path = dir.join("distinct-passes.lua");
    std::fs::write(&path, lua).expect("write the wrk script");
    path
}
