//! A recording HTTP/1.1 upstream: answers 200 to everything and remembers every
//! request's path and headers, so a test can prove what did (and did not) get through.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Request target.
    pub path: String,
    /// Headers, names lower-cased, values as raw bytes.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Seen {
    /// Every value of a header.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }
}

/// A running upstream; stops on drop.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    /// Starts listening on 127.0.0.1 (any free port), answering `upstream`.
    pub fn start() -> Upstream {
        Self::start_with_body("upstream")
    }

    /// Same, answering every request with `body`.
    pub fn start_with_body(body: &str) -> Upstream {
        let body: Arc<str> = Arc::from(body);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let (seen, body) = (seen2.clone(), body.clone());
                    thread::spawn(move || serve(stream, seen, &body));
                }
            }
        });
        Upstream { addr, seen, stop }
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests seen whose path contains `needle`.
    pub fn seen_with(&self, needle: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.contains(needle))
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve(stream: TcpStream, seen: Arc<Mutex<Vec<Seen>>>, answer: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            return;
        }
        let request_line = String::from_utf8_lossy(&line).trim().to_owned();
        if request_line.is_empty() {
            continue;
        }
        let path = request_line
            .split(' ')
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut headers = Vec::new();
        let mut content_length = 0usize;
        loop {
            let mut h = Vec::new();
            if reader.read_until(b'\n', &mut h).unwrap_or(0) == 0 {
                return;
            }
            while h.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                h.pop();
            }
            if h.is_empty() {
                break;
            }
            if let Some(colon) = h.iter().position(|&b| b == b':') {
                let name = String::from_utf8_lossy(&h[..colon])
                    .trim()
                    .to_ascii_lowercase();
                let value = h[colon + 1..].trim_ascii().to_vec();
                if name == "content-length" {
                    content_length = String::from_utf8_lossy(&value).parse().unwrap_or(0);
                }
                headers.push((name, value));
            }
        }
        let mut body = vec![0u8; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        seen.lock().unwrap().push(Seen { path, headers });
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );

        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}
