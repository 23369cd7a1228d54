//! The waiting room's edge filter for Envoy and Istio: a thin proxy-wasm adapter over
//! [`wr_edge_core`], which makes every decision.
//!
//! The adapter only gathers a request's inputs from the host (headers, the peer address
//! from Envoy's `source.address`, the clock), hands them to the core with proxy-wasm
//! shared data as the rate-limit store (shared by every worker of the Envoy), and
//! applies the outcome: the header changes, or the local reply; and it counts each
//! decision in Envoy's stats. It speaks the proxy-wasm ABI itself (`callbacks`, `host`)
//! rather than through the SDK, so that Envoy enters the VM only where the filter has
//! work to do. `callbacks`, `host`, `logger` and `plugin` exist only in the wasm build;
//! [`header_map`] (the ABI's serialized header map) is plain Rust, tested natively.

pub mod header_map;

#[cfg(target_arch = "wasm32")]
mod callbacks;
#[cfg(target_arch = "wasm32")]
mod host;
#[cfg(target_arch = "wasm32")]
mod logger;
#[cfg(target_arch = "wasm32")]
mod plugin;
#[cfg(target_arch = "wasm32")]
mod reports;
