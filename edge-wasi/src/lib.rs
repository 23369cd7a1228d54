//! The edge core as a component of the `waiting-room:edge/decider` world (`wit/edge.wit`):
//! a thin adapter that reads the host's clock and rate-limit state through the world's
//! imports and exports the core's decision as WIT types. Build with
//! `cargo build -p wr-edge-wasi --target wasm32-wasip2 --release`: the `.wasm` is a
//! component.

#[cfg(target_arch = "wasm32")]
mod component;
