//! Runs `wrk` (closed-loop HTTP load) and reads its summary: the load tool of the
//! benchmarks and of the chaos scenarios.

use std::path::Path;

use crate::processes::{command_idle_on_cpu, command_on_cpu};

/// One wrk run.
pub struct Wrk<'a> {
    /// Threads (`-t`).
    pub threads: u32,
    /// Connections (`-c`).
    pub connections: u32,
    /// Duration in seconds (`-d`).
    pub seconds: u64,
    /// The Lua script that shapes the requests (`-s`).
    pub script: &'a Path,
    /// Seconds before wrk counts a request as timed out (`--timeout`).
    pub timeout_secs: u64,
    /// The CPU wrk is pinned to (`taskset -c`), if any.
    pub cpu: Option<u32>,
    /// At the idle scheduling priority (see `command_idle_on_cpu`), on `cpu` if given.
    pub idle: bool,
}

/// What wrk reported.
#[derive(Debug, Default, Clone)]
pub struct WrkResult {
    /// Responses received.
    pub requests: u64,
    /// Responses per second.
    pub rps: f64,
    /// Latency percentiles, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Slowest response, ms.
    pub max_ms: f64,
    /// Responses other than 2xx/3xx.
    pub non_2xx: u64,
    /// Connect, read, write errors and timeouts (requests without a response).
    pub socket_errors: u64,
}

impl Default for Wrk<'_> {
    fn default() -> Self {
        Wrk {
            threads: 2,
            connections: 50,
            seconds: 10,
            script: Path::new(""),
            timeout_secs: 2,
            cpu: None,
            idle: false,
        }
    }
}

impl Wrk<'_> {
    /// Runs wrk against `url` and waits for it (panics if wrk cannot be started).
    pub fn run(&self, url: &str) -> WrkResult {
        let mut cmd = if self.idle {
            command_idle_on_cpu("wrk", self.cpu)
        } else {
            command_on_cpu("wrk", self.cpu)
        };
        cmd.arg(format!("-t{}", self.threads))
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.seconds))
            .arg(format!("--timeout={}s", self.timeout_secs))
            .arg("--latency");
        if !self.script.as_os_str().is_empty() {
            cmd.arg("-s").arg(self.script);
        }
        let out = cmd.arg(url).output().expect("run wrk");
        parse(&String::from_utf8_lossy(&out.stdout))
    }
}

fn ms(value: Option<&str>) -> f64 {
    let v = value.unwrap_or_default();
    let (num, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => n,
    }
}

/// Reads wrk's `--latency` summary.
pub fn parse(text: &str) -> WrkResult {
    let find = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::trim))
    };
    let latency_line: Vec<&str> = find("Latency")
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let socket_errors = find("Socket errors:")
        .map(|l| {
            l.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    WrkResult {
        requests: text
            .lines()
            .find(|l| l.contains(" requests in"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0),
        rps: find("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        p50_ms: ms(find("50%")),
        p99_ms: ms(find("99%")),
        max_ms: ms(latency_line.get(2).copied()),
        non_2xx: find("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        socket_errors,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_summary() {
        let text = "Running 5s test @ http://127.0.0.1:1/\n  2 threads and 50 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     1.61ms  748.12us   1.20s    83.35%\n\
    Req/Sec    15.66k     1.12k   18.02k    71.00%\n  Latency Distribution\n     50%    1.46ms\n\
     75%    1.88ms\n     90%    2.43ms\n     99%    3.58ms\n  155833 requests in 5.00s, 48.68MB read\n\
  Socket errors: connect 0, read 2, write 0, timeout 7\n  Non-2xx or 3xx responses: 12\n\
Requests/sec:  31165.90\nTransfer/sec:      9.73MB\n";
        let r = super::parse(text);
        assert_eq!(r.requests, 155_833);
        assert_eq!(r.non_2xx, 12);
        assert_eq!(r.socket_errors, 9);
        assert!((r.p99_ms - 3.58).abs() < 1e-9 && (r.p50_ms - 1.46).abs() < 1e-9);
        assert!((r.max_ms - 1200.0).abs() < 1e-9);
        assert!((r.rps - 31165.9).abs() < 1e-6);
    }
}
