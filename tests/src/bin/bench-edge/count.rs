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

/// Instructions per request of the Envoy started from `bootstrap`, for `REQUESTS`
/// GET `path` requests that cycle through `cookies` (a `cookie` header each; none if
/// `cookies` is empty). Every response must be a 200.
pub fn instructions_per_request(bootstrap: &Value, path: &str, cookies: &[String]) -> f64 {
    let out = std::env::temp_dir().join(format!("wr-count-{}.callgrind", std::process::id()));
    let wrapper = [
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        // V8 writes the code it runs: valgrind must notice.
        "--smc-check=all-non-file".to_owned(),
        format!("--callgrind-out-file={}", out.display()),
    ];
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
    let counters = callgrind_control(envoy.pid(), &["-e", "Ir"]);
    drop(envoy);
    let _ = std::fs::remove_file(&out);
    total_instructions(&counters) as f64 / REQUESTS as f64
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

/// The sum of the `Th N  count` lines of `callgrind_control -e Ir`.
fn total_instructions(counters: &str) -> u64 {
    let total: u64 = counters
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("Th ")?;
            let count = rest.split_whitespace().nth(1)?;
            count.replace(',', "").parse::<u64>().ok()
        })
        .sum();
    assert!(total > 0, "no counters in:\n{counters}");
    total
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
