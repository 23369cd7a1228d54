//! Support for the integration tests: the built filter under wasmtime through the
//! proxy-wasm ABI ([`proxy_wasm_host`]), real Envoy processes ([`envoy`]), a recording
//! upstream ([`upstream`]), a raw HTTP/1.1 client ([`http`]), origin-queue built
//! in-process ([`in_process`]) and shared fixtures.
//!
//! Every process a test starts is owned by a guard that kills it on drop, and all
//! traffic goes to 127.0.0.1.

pub mod backend_log;
pub mod browser;
pub mod components;

pub mod envoy;

pub mod deploy_check;
pub mod fixtures;
pub mod fuzz;
pub mod http;
pub mod in_process;
pub mod jco;
pub mod opening;
pub mod otlp;
pub mod processes;
pub mod prometheus;
pub mod proxy_wasm_host;
pub mod queue_client;
pub mod redis_nodes;
pub mod sale;
pub mod sim_random;
pub mod tls_certs;
pub mod upstream;
pub mod viceroy;
pub mod workerd;
pub mod wrk;
