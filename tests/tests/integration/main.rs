//! Every integration test in one binary (as linkerd2-proxy keeps its own): one module
//! per area, each test under its old name (`stack_e2e::a_visitor_…`). One link of
//! wasmtime, axum, redis and the rest instead of one per file, and fixtures that can be
//! shared (a Redis Cluster, a stack) shared by the modules of the process.
//!
//! `scripts/run-tests` runs this binary in two lanes (the modules that keep a core busy,
//! and the rest), each with libtest's filters; one module alone:
//! `scripts/run-tests stack_e2e`, or `cargo test -p wr-tests --test integration --
//! stack_e2e::`.

mod config_files;
mod conformance;
mod deploy_files;
mod deploy_schemas;
mod edge_walks;
mod filter_envoy;
mod filter_wasm;
mod fuzz_inputs;
mod queue_cluster;
mod queue_draw_failover;
mod queue_failover;
mod queue_jwt;
mod queue_opening;
mod queue_outage;
mod queue_process;
mod queue_redis_tls;
mod queue_sale;
mod stack_attacks;
mod stack_crowd;
mod stack_e2e;
mod stack_edges;
mod stack_fastly;
mod stack_k6;
mod stack_outage;
mod stack_polite;
mod stack_traces;
