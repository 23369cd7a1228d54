//! origin-queue: the waiting room's queue service, as a library.
//!
//! The binary (`main.rs`) only reads its command line; tests build the same service
//! in-process with [`service::server::Service::start`] and [`api::router`], as axum's `testing`
//! example does. See ARCHITECTURE.md for how the parts fit.
//!
//! At the root: what an event is ([`event`], the ground floor every layer uses), the
//! clock, the metrics, the admission loop and the opening draw's order; the rest grouped
//! by what it serves: [`api`], [`store`] (Redis), [`batching`], [`gates`], [`wait`] (what
//! a visitor is told), [`identity`], [`service`] (running it), [`cli`], [`autopilot`],
//! [`console`], [`telemetry`].

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
