//! The waiting room's edge decision, with no host calls.
//!
//! For every request, with no network call:
//!
//! 1. [`classify`] the path: bypass, queue (origin-queue's API and page) or protected
//!    (an event's paths), refusing paths that are not in normal form;
//! 2. [`rate_limit`] the client by its peer address (and admitted visitors by visitor
//!    id), with token buckets in a [`rate_limit::SharedStore`] that the runtime provides
//!    (proxy-wasm shared data in Envoy; [`rate_limit::LocalStore`] where a runtime keeps
//!    nothing across isolates), and cap what reaches origin-queue;
//! 3. on protected paths, verify the `wr_pass` cookie ([`wr_pass`]) and either forward
//!    with identity headers for the backend or answer locally (302 / 403 / 429).
//!
//! [`request`] reads what a decision needs from the headers; [`decision`] ties these
//! together as a pure function of the request, the clock and the store; [`outcome`] turns a decision into what every runtime applies (header
//! changes or a whole reply, and its JSON form for hosts that are not Rust). The
//! runtimes — `edge-filter` (proxy-wasm), `edge-js` (wasm-bindgen) — only gather inputs
//! and apply outcomes.

pub(crate) mod bucket;
pub mod classify;
pub mod client;
pub mod config;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod cookies;
pub mod decision;
pub mod ended;
pub mod lease;
pub mod local_store;
pub mod metrics;
pub mod outcome;
pub mod pass_cache;
pub mod path;
pub mod rate_limit;
pub mod reply;
pub mod request;
pub mod session_end;
pub(crate) mod words;
