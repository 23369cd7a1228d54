//! A recording HTTP backend on hyper (HTTP/1.1 and HTTP/2): answers every request and
//! remembers its path and headers, so the local stack can show (and tests can prove)
//! what did and did not get past the edge. It frames requests as a real server does,
//! so a body is never taken for a request of its own.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
pub mod capacity;

use capacity::{Capacity, Turn};
use wr_pass::wire::{
    SESSION_END_HEADER, SESSION_END_VALUE, UPSTREAM_MAX_HEADERS, UPSTREAM_MAX_HEADER_LIST_BYTES,
};

/// The last path segment of a purchase: the shop is done with the visitor, and its
/// answer carries the session-end header (so the edge frees the visitor's place).
pub const PURCHASE_SEGMENT: &str = "/purchase";

/// Most requests remembered; the oldest tenth is dropped when full.
const MAX_REMEMBERED: usize = 200_000;
/// Largest request body read; a larger one is answered 413 and not recorded.
const MAX_BODY_BYTES: usize = 1 << 20;

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

/// A running backend; stops serving on drop.
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    capacity: Arc<Capacity>,
    stop: Option<oneshot::Sender<()>>,
}

impl Backend {
    /// Listens on `addr` (port 0: any free port) and answers with `answer`, on a
    /// thread of its own (so that tests and the binary need no async runtime).
    pub fn start(addr: &str, answer: Answer) -> std::io::Result<Backend> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("demo-backend")
            .enable_all()
            .build()?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = oneshot::channel();
        let capacity = Arc::new(Capacity::default());
        let shared = Shared {
            seen: seen.clone(),
            answer,
            capacity: capacity.clone(),
        };
        thread::Builder::new()
            .name("demo-backend".into())
            .spawn(move || {
                runtime.block_on(accept(listener, Arc::new(shared), stopped));
                // Connections still open end with the runtime.
                runtime.shutdown_background();
            })?;
        Ok(Backend {
            addr,
            seen,
            capacity,
            stop: Some(stop),
        })
    }

    /// Answers every request with `body` as text.
    pub fn fixed(body: &str) -> std::io::Result<Backend> {
        let body = body.to_owned();
        Self::start(
            "127.0.0.1:0",
            Arc::new(move |_, _| (200, "text/plain", body.clone())),
        )
    }

    /// Serves at most `per_second` requests per second from now on (0: no limit); see
    /// [`capacity`].
    pub fn set_capacity(&self, per_second: u64) {
        self.capacity.set(per_second);
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
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What every connection shares: the log and the answer.
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Answer,
    capacity: Arc<Capacity>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Accepts connections until `stopped` fires; each is served by hyper (HTTP/1.1, or
/// HTTP/2 with prior knowledge), which frames bodies by `Content-Length` or chunked
/// encoding as HTTP requires: a body is never read as another request.
async fn accept(listener: TcpListener, shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_headers(UPSTREAM_MAX_HEADERS);
    builder
        .http2()
        .max_header_list_size(UPSTREAM_MAX_HEADER_LIST_BYTES as u32);
    let builder = Arc::new(builder);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopped => return,
        };
        let (shared, builder) = (shared.clone(), builder.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(&shared, request).await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Reads one request whole (a body of at most [`MAX_BODY_BYTES`]), records it, and
/// answers it with the backend's [`Answer`].
async fn respond(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (head, body) = request.into_parts();
    if let Err(e) = Limited::new(body, MAX_BODY_BYTES).collect().await {
        return if e.is::<http_body_util::LengthLimitError>() {
            reply(413, "text/plain", "body too large".into())
        } else {
            reply(400, "text/plain", "body cut short".into())
        };
    }
    let request = Seen {
        at_ms: now_ms(),
        method: head.method.as_str().to_owned(),
        // The target as the request line or `:path` gave it (an absolute URI's path too).
        path: head
            .uri
            .path_and_query()
            .map_or_else(|| head.uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: head
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect(),
    };
    let (status, content_type, text) = {
        let mut all = shared.seen.lock().unwrap_or_else(|p| p.into_inner());
        if all.len() >= MAX_REMEMBERED {
            all.drain(..MAX_REMEMBERED / 10);
        }
        all.push(request.clone());
        (shared.answer)(&request, &all)
    };
    if let Some(per_second) = capacity_request(&request) {
        shared.capacity.set(per_second);
        return reply(200, "text/plain", format!("capacity {per_second}/s\n"));
    }
    if !request.path.starts_with("/__demo/") {
        match shared.capacity.turn() {
            Some(Turn::At(at)) => tokio::time::sleep_until(at.into()).await,
            Some(Turn::Refused) => return reply(503, "text/plain", "over capacity\n".into()),
            None => {}
        }
    }
    let mut response = reply(status, content_type, text);
    if is_purchase(&request) && (200..300).contains(&status) {
        response.headers_mut().insert(
            SESSION_END_HEADER,
            HeaderValue::from_static(SESSION_END_VALUE),
        );
    }
    response
}

/// The capacity a `POST /__demo/capacity?per_second=N` sets.
fn capacity_request(request: &Seen) -> Option<u64> {
    if request.method != "POST" {
        return None;
    }
    let query = request.path.strip_prefix("/__demo/capacity?")?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("per_second="))
        .and_then(|n| n.parse().ok())
}

/// True for a purchase: a path ending in [`PURCHASE_SEGMENT`]. The answer carries the
/// session-end header whoever asked (on a path the edge does not protect, the edge
/// removes it and ignores it: that is what the tests show).
fn is_purchase(request: &Seen) -> bool {
    let path = request.path.split('?').next().unwrap_or_default();
    path.ends_with(PURCHASE_SEGMENT)
}

/// A response with `status` (an invalid one is a bug of the answer: 500), `text` as
/// its body, and no caching.
fn reply(status: u16, content_type: &'static str, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
