//! Inside Viceroy (the SDK's requests and the cache live in the host): the conformance
//! vectors through the adapter's own reading of a Fastly request and its store on
//! Fastly's cache (shared by every case, as it is by every request of a POP), and the
//! store's compare-and-swap. `cargo test -p wr-edge-fastly --target wasm32-wasip1` with
//! Viceroy as the runner (the `conformance` module of the integration tests does it in `make test`).
#![cfg(target_arch = "wasm32")]

use fastly::Request;
use wr_edge_core::config::Config;
use wr_edge_core::conformance::{cases, class_expectation, config_at, judge_outcome, paths, Case};
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

#[test]
fn every_case_gets_its_decision_in_viceroy() {
    let now = now_secs();
    let engine = engine(now);
    let mut failures = Vec::new();
    let all = cases(now);
    assert!(all.len() >= 30);
    for (i, case) in all.iter().enumerate() {
        let store = CacheStore;
        let mut outcome = None;
        for r in 0..case.repeat {
            let source = if case.rotate_source {
                format!("10.2.{i}.{r}")
            } else {
                format!("10.1.0.{i}")
            };
            outcome = Some(run(&engine, &store, case, &source, now * 1000));
        }
        let wrong = judge_outcome(&outcome.expect("one run"), &case.expect);
        if !wrong.is_empty() {
            failures.push(format!("{}: {wrong:?}", case.name));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_spelling_gets_its_decision_in_viceroy() {
    let now = now_secs();
    let engine = engine(now);
    let mut failures = Vec::new();
    for (i, (path, class, why)) in paths().into_iter().enumerate() {
        let case = Case {
            name: why.clone(),
            path: Some(path.clone()),
            headers: Vec::new(),
            repeat: 1,
            rotate_source: false,
            expect: serde_json::Value::Null,
        };
        let outcome = run(
            &engine,
            &CacheStore,
            &case,
            &format!("10.3.0.{i}"),
            now * 1000,
        );
        let wrong = judge_outcome(&outcome, &class_expectation(&class));
        if !wrong.is_empty() {
            failures.push(format!("{path} ({why}): {wrong:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
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
