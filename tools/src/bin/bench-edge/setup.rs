//! The Envoys a benchmark runs against: the same listener and `direct_response` route
//! (no upstream), with or without a filter.

use std::path::Path;

use serde_json::{json, Value};
use wr_tests::envoy::{bootstrap, Topology};
use wr_tests::fixtures::bench_filter_config;

use crate::native::native_filters;

/// Which Envoy a variant runs against.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// No HTTP filter but the router.
    Bare,
    /// A Rust proxy-wasm filter that does nothing: the cost of wasm itself.
    Floor,
    /// Our filter with the client and visitor rate limits on.
    Filter,
    /// Our filter with both rate limits off: the pass check alone.
    FilterNoLimits,
    /// What a user would configure instead of us: `jwt_authn` (HS256 from a cookie)
    /// and `local_ratelimit`.
    Native,
    /// Another build of our filter (the `i`th of `WR_BENCH_EXTRA_WASM`), configured as
    /// [`Which::Filter`].
    Extra(usize),
}

/// The bootstrap of `which`, loading `wasm` where it has a wasm filter.
pub fn direct_response_bootstrap(which: Which, wasm: &Path) -> Value {
    let config = bench_filter_config(which != Which::FilterNoLimits);
    let unused = "127.0.0.1:9".parse().unwrap();
    let topology = Topology {
        wasm,
        filter_config: &config,
        backend: unused,
        queue: unused,
        trusted_hops: 0,
    };
    let mut b = bootstrap(&topology);
    let hcm = &mut b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    hcm["route_config"]["virtual_hosts"][0]["routes"] = json!([{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]);
    let filters = hcm["http_filters"].as_array_mut().unwrap();
    match which {
        Which::Floor | Which::Filter | Which::FilterNoLimits | Which::Extra(_) => {}
        Which::Bare => filters.retain(|f| f["name"] != "envoy.filters.http.wasm"),
        Which::Native => {
            filters.retain(|f| f["name"] != "envoy.filters.http.wasm");
            let router = filters.pop().expect("router");
            filters.extend(native_filters().as_array().unwrap().iter().cloned());
            filters.push(router);
        }
    }
    b
}
