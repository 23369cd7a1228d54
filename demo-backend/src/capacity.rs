//! A capacity knob: the backend serves at most so many requests per second, one after
//! another, and a request waits its turn (a single server with a fixed service time,
//! first come first served). So its response time climbs once the load passes the
//! capacity, as a real backend's does, and the autopilot has something to follow.
//!
//! Set with `WR_BACKEND_CAPACITY` (requests per second; unset or 0: no limit) or, while
//! it runs, `POST /__demo/capacity?per_second=N`. A request that would wait longer than
//! [`MAX_WAIT`] is answered 503 at once (a server's queue timeout).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a request waits for its turn.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// The knob and the queue.
#[derive(Default)]
pub struct Capacity {
    /// Requests per second, 0: unlimited.
    per_second: AtomicU64,
    /// When the server is next free.
    next_free: Mutex<Option<Instant>>,
}

/// When a request is served.
pub enum Turn {
    /// Answer at this instant.
    At(Instant),
    /// The wait would be too long: answer 503 now.
    Refused,
}

impl Capacity {
    /// Sets the capacity (0: unlimited).
    pub fn set(&self, per_second: u64) {
        self.per_second.store(per_second, Ordering::Relaxed);
    }

    /// The capacity now (0: unlimited).
    pub fn get(&self) -> u64 {
        self.per_second.load(Ordering::Relaxed)
    }

    /// Takes a turn for a request arriving now; `None` without a limit.
    pub fn turn(&self) -> Option<Turn> {
        let per_second = self.get();
        if per_second == 0 {
            return None;
        }
        let now = Instant::now();
        let service = Duration::from_secs_f64(1.0 / per_second as f64);
        let mut next = self.next_free.lock().unwrap_or_else(|p| p.into_inner());
        let start = next.map_or(now, |n| n.max(now));
        if start.duration_since(now) > MAX_WAIT {
            return Some(Turn::Refused);
        }
        let done = start + service;
        *next = Some(done);
        Some(Turn::At(done))
    }
}
