//! Inside Viceroy (the SDK's requests and the cache live in the host): the conformance
//! vectors through the adapter's own reading of a Fastly request and its store on
//! Fastly's cache (shared by every case, as it is by every request of a POP), and the
//! store's compare-and-swap. `cargo test -p wr-edge-fastly --target wasm32-wasip1` with
//! Viceroy as the runner (the `conformance` module of the integration tests does it in `make test`).
#![cfg(target_arch = "wasm32")]

use fastly::Request;
use wr_edge_core::config::Config;
use wr_edge_core::conformance::{cases, config_at, failures, path_cases, source_address, Case};
use wr_edge_core::decision::Engine;
use wr_edge_core::rate_limit::{SharedStore, StoreError};
use wr_edge_fastly::cache_store::CacheStore;
use wr_edge_fastly::host::core_headers;

fn now_secs() -> u64 {
    wr_edge_fastly::host::now_ms() / 1000
}

fn engine(now_secs: u64) -> Engine {
    Engine::new(Config::from_json(config_at(now_secs).to_string().as_bytes()).expect("vectors"))
}

/// The case as a request in the host, read back the way the adapter reads the client's.
fn run<'e>(
    engine: &'e Engine,
    store: &CacheStore,
    case: &Case,
    source: &str,
    now_ms: u64,
) -> wr_edge_core::outcome::Outcome<'e> {
    let mut request = Request::get("http://edge.test/");
    for (name, value) in &case.headers {
        request.append_header(name.as_str(), value.as_str());
    }
    let headers = core_headers(case.path.as_deref(), &request);
    engine.outcome(&headers, Some(source.as_bytes()), now_ms, store)
}

/// Every request of `case` through the adapter's reading and the cache store (shared by
/// every case, as by every request of a POP); the last outcome's JSON form.
fn run_case(engine: &Engine, now: u64, i: usize, case: &Case) -> serde_json::Value {
    let mut outcome = serde_json::Value::Null;
    for r in 0..case.repeat {
        let o = run(
            engine,
            &CacheStore,
            case,
            &source_address(i, r, case),
            now * 1000,
        );
        outcome = serde_json::to_value(&o).unwrap_or_default();
    }
    outcome
}

#[test]
fn every_case_gets_its_decision_in_viceroy() {
    let now = now_secs();
    let engine = engine(now);
    let all = cases(now);
    assert!(all.len() >= 30);
    let wrong = failures(&all, |i, case| run_case(&engine, now, i, case));
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn every_spelling_gets_its_decision_in_viceroy() {
    let now = now_secs();
    let engine = engine(now);
    // Other clients than the cases' (the store is shared): indexes after theirs.
    let offset = cases(now).len();
    let wrong = failures(&path_cases(), |i, case| {
        run_case(&engine, now, offset + i, case)
    });
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_cache_store_keeps_a_value_and_refuses_a_stale_token() {
    let store = CacheStore;
    assert_eq!(store.get("test:absent"), None);
    store.set("test:cas", b"one", 0).expect("first write");
    let (value, token) = store.get("test:cas").expect("written");
    assert_eq!(value, b"one");
    store
        .set("test:cas", b"two", token)
        .expect("write with the token");
    assert_eq!(
        store.set("test:cas", b"three", token),
        Err(StoreError::CasMismatch),
        "the token was spent by the write before"
    );
    assert_eq!(store.get("test:cas").expect("written").0, b"two");
}
