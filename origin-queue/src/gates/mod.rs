//! What keeps the public API standing under a crowd: the adaptive in-flight caps, the
//! per-client and per-visitor token buckets, the record of polls not served, and the
//! throttle on repeated failure logs.

pub mod in_flight;
pub mod limiter;
pub mod log_throttle;
pub mod missed_polls;
