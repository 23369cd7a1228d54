//! At most one log line a second for a repeated failure, with how many there were since
//! the last line: an outage under load must not turn into a log storm.

use std::sync::atomic::{AtomicU64, Ordering};

/// One kind of failure's throttle; a `static` per call site.
pub struct LogThrottle {
    last_ms: AtomicU64,
    unlogged: AtomicU64,
}

impl LogThrottle {
    /// A throttle that lets the first failure through.
    pub const fn new() -> Self {
        LogThrottle {
            last_ms: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
        }
    }

    /// A failure at `now_ms`: `Some(failures since the last line, this one included)`
    /// when it is to be logged, `None` when it is only counted.
    pub fn failure(&self, now_ms: u64) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < 1_000
            || self
                .last_ms
                .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.unlogged.swap(0, Ordering::Relaxed) + 1)
    }
}

impl Default for LogThrottle {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::LogThrottle;

    #[test]
    fn one_line_a_second_with_the_failures_since() {
        let throttle = LogThrottle::new();
        assert_eq!(throttle.failure(10_000), Some(1));
        assert_eq!(throttle.failure(10_100), None);
        assert_eq!(throttle.failure(10_900), None);
        assert_eq!(throttle.failure(11_000), Some(3));
    }
}
