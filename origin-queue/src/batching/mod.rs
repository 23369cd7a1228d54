//! Coalescing requests into one Redis script call per event: the mechanism
//! (`per_event_batch`) and its two users, joins and status polls.

pub mod join_batch;
pub mod per_event_batch;
pub mod status_batch;
