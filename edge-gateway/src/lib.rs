//! The waiting room as a `wasi:http/proxy` component that fronts an origin by itself:
//! every request is decided by the edge core; admitted and bypass requests go to the
//! origin with the core's header changes, origin-queue's routes to origin-queue, and the
//! rest is answered with the same 302 / 400 / 403 / 429 as the Envoy filter.
//!
//! [`settings`] reads the configuration from the environment (plain Rust, tested
//! natively); `proxy` (wasm32 only) is the wasi:http glue.
//!
//! Rate limits: state lives in the instance. A host that creates an instance per request
//! (`wasmtime serve` does) keeps none across requests, so the configured limits never
//! bind there; see `docs/edge-runtimes.md`.

pub mod settings;

#[cfg(target_arch = "wasm32")]
mod proxy;
