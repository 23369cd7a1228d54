//! A recording HTTP/1.1 backend: answers every request and remembers its path and
//! headers, so the local stack can show (and tests can prove) what did and did not get
//! past the edge.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Most requests remembered; the oldest tenth is dropped when full.
const MAX_REMEMBERED: usize = 200_000;

/// One request as the backend saw it.

#[derive(Debug, Clone)]
pub struct Seen {
    /// Unix milliseconds when it arrived.
    pub at_ms: u64,
    /// Request method.
    pub method: String,
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

    /// As JSON: time, method, path, the identity headers and every header's name.
    pub fn to_json(&self) -> serde_json::Value {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        serde_json::json!({
            "at_ms": self.at_ms, "method": self.method, "path": self.path,
            "visitor": self.values("x-wr-visitor").first(), "event": self.values("x-wr-event").first(),
            "header_names": names,
        })
    }
}

/// What to answer: (status, content type, body) for a request.
pub type Answer = Arc<dyn Fn(&Seen, &[Seen]) -> (u16, &'static str, String) + Send + Sync>;

/// A running backend; stops accepting on drop.
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Backend {
    /// Listens on `addr` (port 0: any free port) and answers with `answer`.
    pub fn start(addr: &str, answer: Answer) -> std::io::Result<Backend> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let (seen, answer) = (seen2.clone(), answer.clone());
                    thread::spawn(move || serve(stream, &seen, &answer));
                }
            }
        });
        Ok(Backend { addr, seen, stop })
    }

    /// Answers every request with `body` as text.
    pub fn fixed(body: &str) -> std::io::Result<Backend> {
        let body = body.to_owned();
        Self::start(
            "127.0.0.1:0",
            Arc::new(move |_, _| (200, "text/plain", body.clone())),
        )
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Requests seen whose path contains `needle`.
    pub fn seen_with(&self, needle: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.contains(needle))
            .collect()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Serves one keep-alive connection.
fn serve(stream: TcpStream, seen: &Mutex<Vec<Seen>>, answer: &Answer) {
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
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
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
        let mut body = vec![0u8; content_length.min(1 << 20)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Seen {
            at_ms: now_ms(),
            method,
            path,
            headers,
        };
        let (status, content_type, text) = {
            let mut all = seen.lock().unwrap_or_else(|p| p.into_inner());
            if all.len() >= MAX_REMEMBERED {
                all.drain(..MAX_REMEMBERED / 10);
            }
            all.push(request.clone());
            answer(&request, &all)
        };
        let reply = format!(
            "HTTP/1.1 {status} OK\r\ncontent-type: {content_type}\r\ncache-control: no-store\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}
