//! `bench-edge --count`: the instructions one request costs the whole Envoy process,
//! counted by callgrind, so that the comparison does not depend on what else the
//! machine is doing (the same build and requests give the same count, run after run).
//!
//! Envoy (1 worker) runs under `valgrind --tool=callgrind`; one keep-alive connection
//! sends [`WARM_UP`] requests (V8 compiles the module's hot functions), the counters are
//! zeroed (`callgrind_control -z`), [`REQUESTS`] more are sent, and the counters of
//! every thread are read (`callgrind_control -e Ir`). Instructions are not time (V8's
//! code, Envoy's C++ and the kernel do not run at the same instructions per cycle, and
//! the kernel is not counted), so this is the work side of the picture and the req/s
//! tables are the time side.
//!
//! With `--cache`, callgrind also simulates the caches (`--cache-sim=yes`, sized like
//! this machine's) and the misses per request are reported beside the instructions:
//! first-level instruction misses (I1) and data misses (D1, reads and writes). They
//! show part of why instructions are not time: code that jumps between Envoy, V8 and the
//! module misses the instruction cache more often per instruction than Envoy's own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use wr_tests::envoy::Envoy;

/// Requests sent before counting.
pub const WARM_UP: usize = 500;
/// Requests counted.
pub const REQUESTS: usize = 3_000;

/// Callgrind's events read per run: instructions, then (with the cache simulated)
/// first-level instruction misses and data read and write misses.
const EVENTS: [&str; 4] = ["Ir", "I1mr", "D1mr", "D1mw"];

/// What one request cost the whole Envoy process, averaged over [`REQUESTS`].
#[derive(Clone, Copy)]
pub struct PerRequest {
    /// Instructions executed.
    pub instructions: f64,
    /// First-level cache misses, when the caches were simulated: (instruction, data).
    pub misses: Option<(f64, f64)>,
}

/// The cost per request of the Envoy started from `bootstrap`, for `REQUESTS` GET
/// `path` requests that cycle through `cookies` (a `cookie` header each; none if
/// `cookies` is empty); with the caches simulated if `cache`. Every response must be a
/// 200.
pub fn per_request(bootstrap: &Value, path: &str, cookies: &[String], cache: bool) -> PerRequest {
    let out = std::env::temp_dir().join(format!("wr-count-{}.callgrind", std::process::id()));
    let mut wrapper = vec![
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        // V8 writes the code it runs: valgrind must notice.
        "--smc-check=all-non-file".to_owned(),
        format!("--callgrind-out-file={}", out.display()),
    ];
    if cache {
        wrapper.push("--cache-sim=yes".to_owned());
    }
    let envoy = Envoy::start_under(bootstrap, 1, &wrapper, Duration::from_secs(300))
        .expect("start envoy under valgrind (is valgrind installed?)");
    let mut client = KeepAlive::connect(&envoy);
    let mut sent = 0;
    let mut send = |n: usize| {
        for _ in 0..n {
            let cookie = (!cookies.is_empty()).then(|| cookies[sent % cookies.len()].as_str());
            let status = client.get(path, cookie);
            assert_eq!(status, 200, "request {sent} answered {status}");
            sent += 1;
        }
    };
    send(WARM_UP);
    callgrind_control(envoy.pid(), &["-z"]);
    send(REQUESTS);
    let events = if cache { &EVENTS[..] } else { &EVENTS[..1] };
    let counters = callgrind_control(envoy.pid(), &["-e", &events.join(",")]);
    drop(envoy);
    let _ = std::fs::remove_file(&out);
    let totals = thread_totals(&counters, events.len());
    let per = |i: usize| totals[i] as f64 / REQUESTS as f64;
    assert!(totals[0] > 0, "no instructions counted in:\n{counters}");
    PerRequest {
        instructions: per(0),
        misses: cache.then(|| (per(1), per(2) + per(3))),
    }
}

fn callgrind_control(pid: u32, args: &[&str]) -> String {
    let out = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .output()
        .expect("run callgrind_control");
    assert!(out.status.success(), "callgrind_control {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Each of the first `n` event columns of the `Th N  count…` lines of
/// `callgrind_control -e`, summed over every thread (callgrind prints `.` for zero).
fn thread_totals(counters: &str, n: usize) -> Vec<u64> {
    let mut totals = vec![0u64; n];
    for line in counters.lines() {
        let Some(rest) = line.trim().strip_prefix("Th ") else {
            continue;
        };
        let columns = rest.split_whitespace().skip(1).take(n);
        for (total, column) in totals.iter_mut().zip(columns) {
            if column != "." {
                *total += column
                    .replace(',', "")
                    .parse::<u64>()
                    .unwrap_or_else(|_| panic!("not a count: {column:?} in {line:?}"));
            }
        }
    }
    totals
}

/// One HTTP/1.1 connection, kept alive.
struct KeepAlive {
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    fn connect(envoy: &Envoy) -> KeepAlive {
        let stream = TcpStream::connect(envoy.addr).expect("connect to envoy");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        KeepAlive {
            reader: BufReader::new(stream),
        }
    }

    /// Sends one GET and reads the whole response; its status.
    fn get(&mut self, path: &str, cookie: Option<&str>) -> u32 {
        let cookie = cookie
            .map(|c| format!("cookie: {c}\r\n"))
            .unwrap_or_default();
        let request = format!("GET {path} HTTP/1.1\r\nhost: bench.test\r\n{cookie}\r\n");
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .expect("send");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().expect("content-length");
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("body");
        status
    }
}
