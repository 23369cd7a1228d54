//! origin-queue: the waiting room's queue service, as a library.
//!
//! The binary (`main.rs`) only reads its command line; tests build the same service
//! in-process with [`server::Service::start`] and [`api::router`], as axum's `testing`
//! example does. See ARCHITECTURE.md for how the parts fit.

pub mod admission;
pub mod api;
pub mod autopilot;
pub mod batching;
pub mod cli;
pub mod clock;
pub mod console;
pub mod draw_order;
pub mod event;
pub mod gates;
pub mod identity;
pub mod metrics;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod wait;
