//! The last moment this instance failed to serve a status poll.
//!
//! A waiting visitor counts as abandoned when none of their polls left a mark for
//! `abandon_seconds` (see `lua/seen.lua`). A poll that origin-queue sheds, or whose Redis
//! call times out, leaves no mark although the visitor did poll; under a long overload
//! the sweep would then drop people who never stopped polling. So every such failure is
//! remembered here, the admission loop hands the latest one to the admission script, and
//! the script drops nobody while the abandonment window holds a failed poll.

use std::sync::atomic::{AtomicU64, Ordering};

/// Unix milliseconds of the latest failed poll; 0 if none yet.
#[derive(Debug, Default)]
pub struct MissedPolls {
    last_ms: AtomicU64,
}

impl MissedPolls {
    /// Records a poll that could not be served at `now_ms`.
    pub fn record(&self, now_ms: u64) {
        self.last_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// The latest failed poll, unix milliseconds (0: none).
    pub fn last_ms(&self) -> u64 {
        self.last_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest() {
        let m = MissedPolls::default();
        assert_eq!(m.last_ms(), 0);
        m.record(20);
        m.record(10);
        assert_eq!(m.last_ms(), 20);
    }
}
