//! The waiting room's edge filter, a proxy-wasm HTTP filter for Envoy and Istio.
//!
//! For every request, with no network call:
//!
//! 1. [`classify`] the path: bypass, queue (origin-queue's API and page) or protected
//!    (an event's paths), refusing paths that are not in normal form;
//! 2. [`rate_limit`] the client by its peer address (and admitted visitors by visitor
//!    id), with token buckets in proxy-wasm shared data shared by every worker, and cap
//!    what reaches origin-queue;
//! 3. on protected paths, verify the `wr_pass` cookie ([`wr_pass`]) and either forward
//!    with identity headers for the backend or answer locally (302 / 403 / 429).
//!
//! [`decision`] ties these together as a pure function of the request, the clock and a
//! [`rate_limit::SharedStore`]; `plugin` (wasm32 only) is the thin proxy-wasm glue.

pub mod classify;
pub mod client;
pub mod config;
pub mod cookies;
pub mod decision;
pub mod header_map;
pub mod metrics;
pub mod path;
pub mod rate_limit;
pub mod reply;

#[cfg(target_arch = "wasm32")]
mod host;
#[cfg(target_arch = "wasm32")]
mod plugin;
