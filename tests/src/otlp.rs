//! A small OpenTelemetry collector for the tests: it takes OTLP/HTTP exports
//! (`POST /v1/traces`) on a loopback port. Exports in JSON
//! (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) are kept, span by span, for the test to
//! read; protobuf ones (the default protocol, what the benchmark sends) are only counted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// One span as exported.
#[derive(Debug, Clone)]
pub struct Span {
    /// The trace id, hex.
    pub trace_id: String,
    /// The span id, hex.
    pub span_id: String,
    /// The parent's span id, hex (empty for a root).
    pub parent_span_id: String,
    /// The span's name.
    pub name: String,
    /// The span kind's number (1 internal, 2 server, 3 client).
    pub kind: u64,
    /// Its attributes, each value as text.
    pub attributes: Vec<(String, String)>,
    /// `service.name` of the resource that sent it.
    pub service: String,
}

impl Span {
    /// The value of an attribute, if set.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The receiver; it stops serving when the test process ends.
pub struct Collector {
    /// Where it listens: `http://<addr>` is the OTLP endpoint.
    pub addr: SocketAddr,
    spans: Arc<Mutex<Vec<Span>>>,
    exports: Arc<Mutex<Vec<String>>>,
    counts: Arc<Counts>,
}

/// Exports and bytes received, of every protocol.
#[derive(Default)]
struct Counts {
    exports: AtomicU64,
    bytes: AtomicU64,
}

impl Collector {
    /// Listens on a free loopback port.
    pub fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the OTLP receiver");
        let addr = listener.local_addr().expect("its address");
        let spans = Arc::new(Mutex::new(Vec::new()));
        let exports = Arc::new(Mutex::new(Vec::new()));
        let counts = Arc::new(Counts::default());
        let (kept, bodies, counted) = (spans.clone(), exports.clone(), counts.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (kept, bodies, counted) = (kept.clone(), bodies.clone(), counted.clone());
                std::thread::spawn(move || serve(stream, &kept, &bodies, &counted));
            }
        });
        Collector {
            addr,
            spans,
            exports,
            counts,
        }
    }

    /// The endpoint for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Vec<Span> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id.eq_ignore_ascii_case(trace_id))
            .collect()
    }

    /// How many exports, and how many bytes of them, arrived (every protocol).
    pub fn received(&self) -> (u64, u64) {
        (
            self.counts.exports.load(Ordering::Relaxed),
            self.counts.bytes.load(Ordering::Relaxed),
        )
    }

    /// Every JSON export body received, as sent.
    pub fn raw_exports(&self) -> Vec<String> {
        self.exports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Answers the requests of one connection (kept alive) until it closes.
fn serve(
    stream: TcpStream,
    spans: &Mutex<Vec<Span>>,
    exports: &Mutex<Vec<String>>,
    counts: &Counts,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut json = false;
        let mut line = String::new();
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() && !first {
                break;
            }
            first = false;
            if let Some((name, value)) = trimmed.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
                if name.eq_ignore_ascii_case("content-type") {
                    json = value.contains("json");
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        counts.exports.fetch_add(1, Ordering::Relaxed);
        counts.bytes.fetch_add(length as u64, Ordering::Relaxed);
        if json {
            let text = String::from_utf8_lossy(&body).into_owned();
            if let Ok(export) = serde_json::from_str::<Value>(&text) {
                spans
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(spans_of(&export));
            }
            exports.lock().unwrap_or_else(|e| e.into_inner()).push(text);
        }
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// The spans of an `ExportTraceServiceRequest` in OTLP's JSON form.
fn spans_of(export: &Value) -> Vec<Span> {
    let mut found = Vec::new();
    for resource in export["resourceSpans"].as_array().into_iter().flatten() {
        let service = attributes_of(&resource["resource"]["attributes"])
            .into_iter()
            .find(|(k, _)| k == "service.name")
            .map(|(_, v)| v)
            .unwrap_or_default();
        for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
            for span in scope["spans"].as_array().into_iter().flatten() {
                let text = |key: &str| span[key].as_str().unwrap_or_default().to_owned();
                found.push(Span {
                    trace_id: text("traceId"),
                    span_id: text("spanId"),
                    parent_span_id: text("parentSpanId"),
                    name: text("name"),
                    kind: span["kind"].as_u64().unwrap_or(0),
                    attributes: attributes_of(&span["attributes"]),
                    service: service.clone(),
                });
            }
        }
    }
    found
}

/// `[{"key": k, "value": {"stringValue": v}}, …]` as (key, value as text) pairs.
fn attributes_of(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|kv| {
            let key = kv["key"].as_str().unwrap_or_default().to_owned();
            let value = kv["value"]
                .as_object()
                .and_then(|v| v.values().next())
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            (key, value)
        })
        .collect()
}
