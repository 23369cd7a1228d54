//! `cargo run --release -p wr-edge-core --example decide-many -- <bench.json>`: decides
//! the bench's request `n` times with the native core and prints nanoseconds per
//! decision (used by `make bench`'s runtime comparison, in an optimised build).

use std::time::Instant;

use serde_json::Value;
use wr_edge_core::config::Config;
use wr_edge_core::decision::Engine;
use wr_edge_core::local_store::LocalStore;
use wr_edge_core::outcome::Outcome;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: decide-many <bench.json>");
    let bench: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let engine = Engine::new(Config::from_json(bench["config"].to_string().as_bytes()).unwrap());
    let store = LocalStore::default();
    let request = &bench["request"];
    let mut pairs = vec![(
        b":path".to_vec(),
        request["path"].as_str().unwrap().as_bytes().to_vec(),
    )];
    for pair in request["headers"].as_array().unwrap() {
        let (name, value) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        pairs.push((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
    }
    let source = request["source"].as_str().unwrap().as_bytes();
    let now_ms = bench["now_ms"].as_u64().unwrap();
    let n = bench["n"].as_u64().unwrap();
    let started = Instant::now();
    for _ in 0..n {
        let outcome = engine.outcome(&pairs, Some(source), now_ms, &store);
        assert!(matches!(outcome, Outcome::Forward { .. }), "{outcome:?}");
    }
    println!("{}", started.elapsed().as_nanos() as f64 / n as f64);
}
