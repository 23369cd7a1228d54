//! The edge core for JavaScript runtimes, through wasm-bindgen: a thin adapter that
//! takes a request as JSON, decides with the core, and returns the outcome as JSON
//! (`wr_edge_core::outcome::Outcome::to_json`). The JavaScript side (`js/`) turns a
//! `Request` into that JSON and applies the outcome; nothing is decided there.
//!
//! Rate-limit state lives in the instance ([`LocalStore`]): one per isolate. See the
//! package README for what that means and how to put a runtime's own limiter in front.

use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wr_edge_core::config::Config;
use wr_edge_core::decision::Engine;
use wr_edge_core::local_store::LocalStore;
use wr_edge_core::metrics::{Counter, Counters};
use wr_edge_core::outcome::{header_pairs, Outcome};
use wr_edge_core::reply::{too_many_requests, LocalReply};
use wr_edge_core::session_end::ResponseOutcome;

/// The wire version of this package's JSON (request in, outcome out).
pub const JSON_VERSION: u32 = 1;

/// A request as the JavaScript side hands it over.
#[derive(Deserialize)]
struct JsRequest {
    /// Path and query as received (`:path`); absent: refused as not normalized.
    path: Option<String>,
    /// Every header as [name, value], in order, names as received.
    #[serde(default)]
    headers: Vec<(String, String)>,
    /// The client address as the platform established it (never a client header the
    /// platform does not overwrite); absent: every such client shares one bucket.
    source: Option<String>,
}

/// The waiting room's edge for one isolate: a validated configuration and the isolate's
/// rate-limit state.
#[wasm_bindgen]
pub struct WaitingRoomEdge {
    engine: Engine,
    store: LocalStore,
}

#[wasm_bindgen]
impl WaitingRoomEdge {
    /// Validates `config_json` (the same JSON as the Envoy filter's configuration) at
    /// `now_ms` (unix milliseconds: an event's cut may not be later); throws an `Error`
    /// listing every problem.
    #[wasm_bindgen(constructor)]
    pub fn new(config_json: &str, now_ms: f64) -> Result<WaitingRoomEdge, JsError> {
        let now = (now_ms / 1000.0) as u64;
        let config = Config::from_json_at(config_json.as_bytes(), now).map_err(|problems| {
            JsError::new(&format!(
                "wr-edge configuration rejected: {}",
                problems.join("; ")
            ))
        })?;
        Ok(WaitingRoomEdge {
            engine: Engine::new(config),
            store: LocalStore::default(),
        })
    }

    /// Decides what happens to a request (`{"path", "headers": [[name, value], …],
    /// "source"}` as JSON) at `now_ms` (unix milliseconds), and returns the outcome as
    /// JSON. Input that is not such JSON gets a 503 reply: fail closed.
    pub fn decide(&self, request_json: &str, now_ms: f64) -> String {
        let Ok(request) = serde_json::from_str::<JsRequest>(request_json) else {
            return unavailable();
        };
        let headers = header_pairs(request.path, request.headers);
        let now_ms = if now_ms.is_finite() && now_ms > 0.0 {
            now_ms as u64
        } else {
            0 // without a clock every pass looks expired: fail closed
        };
        let source = request.source.as_deref().map(str::as_bytes);
        self.engine
            .outcome(&headers, source, now_ms, &self.store)
            .to_json()
    }

    /// Decides what happens to a response: `session_json` is the `session` of the
    /// request's forward outcome (JSON; `null` when there was none), `headers_json` the
    /// response's headers as `[[name, value], …]`, `now_ms` unix milliseconds. Returns
    /// `{"changes": [...], "report": {...} | null, "counters": [...]}` as JSON; input that
    /// is not such JSON changes nothing.
    pub fn respond(&self, session_json: &str, headers_json: &str, now_ms: f64) -> String {
        let Ok(headers) = serde_json::from_str::<Vec<(String, String)>>(headers_json) else {
            return ResponseOutcome::default().to_json();
        };
        let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
        let now_ms = if now_ms.is_finite() && now_ms > 0.0 {
            now_ms as u64
        } else {
            0
        };
        self.engine
            .respond_json(session_json, pairs, now_ms, &self.store)
            .to_json()
    }

    /// The outcome JSON of the edge's 429 (`RATE_LIMITED`, `Retry-After`), for a
    /// runtime's own limiter put in front of [`WaitingRoomEdge::decide`].
    #[wasm_bindgen(js_name = rateLimited)]
    pub fn rate_limited(retry_after_secs: u32) -> String {
        reply_outcome(
            too_many_requests(retry_after_secs),
            Counters::from_slice(&[Counter::RateLimitedClient]),
        )
    }

    /// The names of every counter an outcome may list (for defining metrics up front).
    #[wasm_bindgen(js_name = counterNames)]
    pub fn counter_names() -> Vec<String> {
        Counter::ALL.iter().map(|c| c.name().to_owned()).collect()
    }
}

fn unavailable() -> String {
    reply_outcome(wr_edge_core::reply::unavailable(), Counters::new())
}

fn reply_outcome(reply: LocalReply, counters: Counters) -> String {
    Outcome::Reply {
        status: reply.status,
        headers: reply.headers,
        body: reply.body,
        rejection: None,
        counters,
    }
    .to_json()
}
