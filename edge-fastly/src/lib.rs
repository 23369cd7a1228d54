//! The waiting room on Fastly Compute: every request is decided by the edge core;
//! admitted and bypass requests go to the `origin` backend with the core's header
//! changes, origin-queue's routes to the `queue` backend, and the rest is answered with
//! the same 302 / 400 / 403 / 429 as on every runtime.
//!
//! [`settings`], [`url`] and [`stored`] are plain Rust, tested natively; `host` (reading
//! the client request and the stores), `cache_store` (the core's shared store on
//! Fastly's cache) and `compute` (the request's whole path) exist in the wasm build
//! only, and are tested in Viceroy (`tests/viceroy.rs`, and end to end in `make test`).
//!
//! State: Compute runs an instance per request, so the core's rate-limit buckets and
//! its memory of ended sessions live in Fastly's cache (per POP, see `cache_store`).
//! Fastly's Edge Rate Limiter (per POP) can be asked in front of the decision too (the
//! `rate_limiter` setting). See `docs/edge-runtimes.md`.

pub mod settings;
pub mod stored;
pub mod url;

#[cfg(target_arch = "wasm32")]
pub mod cache_store;
#[cfg(target_arch = "wasm32")]
pub mod compute;
#[cfg(target_arch = "wasm32")]
pub mod host;
