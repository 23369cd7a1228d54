//! Load shedding: an adaptive cap on the public API's requests in flight.
//!
//! Without a cap, a flood beyond what Redis can answer queues up inside the process
//! and every request waits longer, until Redis calls pass their timeout and the work
//! done for them is wasted. With it, a request that finds the cap reached is answered
//! at once with 503 + `Retry-After`.
//!
//! A fixed cap is right only for one speed of Redis and CPU: when calls slow down (the
//! CPU taken by a flood, a slow replica), the same number in flight waits longer. So
//! the cap adapts, in the manner of TCP's congestion window: a request slower than
//! `slow` cuts it by a quarter (at most once per [`CUT_EVERY_MS`]), a request faster
//! than a quarter of `slow` raises it by one (at most once per [`RAISE_EVERY_MS`]),
//! between `max / 16` (at least 1) and the configured `max`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Shortest time between two cuts: one slow burst cuts once, not once per request.
pub const CUT_EVERY_MS: u64 = 100;
/// Shortest time between two raises: from the floor back to the maximum in well under
/// a second once requests are fast again.
pub const RAISE_EVERY_MS: u64 = 1;

/// Counts requests in flight against a cap that follows their latency.
pub struct InFlight {
    max: usize,
    min: usize,
    slow: Duration,
    cap: AtomicUsize,
    now: AtomicUsize,
    last_cut_ms: AtomicU64,
    last_raise_ms: AtomicU64,
}

/// One admitted request; leaving the scope frees its place.
pub struct Entered<'a>(&'a InFlight);

impl InFlight {
    /// A counter allowing up to `max` requests at once; a request slower than `slow`
    /// counts as a sign of congestion.
    pub fn new(max: usize, slow: Duration) -> Self {
        let max = max.max(1);
        InFlight {
            max,
            min: (max / 16).max(1),
            slow,
            cap: AtomicUsize::new(max),
            now: AtomicUsize::new(0),
            last_cut_ms: AtomicU64::new(0),
            last_raise_ms: AtomicU64::new(0),
        }
    }

    /// A place for one more request, or `None` when the cap is reached.
    pub fn try_enter(&self) -> Option<Entered<'_>> {
        let cap = self.cap.load(Ordering::Relaxed);
        self.now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()
            .map(|_| Entered(self))
    }

    /// The current cap.
    pub fn cap(&self) -> usize {
        self.cap.load(Ordering::Relaxed)
    }

    /// Adjusts the cap after a request took `elapsed`, at `now_ms`.
    pub fn observe(&self, elapsed: Duration, now_ms: u64) {
        if elapsed >= self.slow {
            self.adjust(&self.last_cut_ms, CUT_EVERY_MS, now_ms, |c| {
                (c - c / 4).max(self.min)
            });
        } else if elapsed < self.slow / 4 && self.cap() < self.max {
            self.adjust(&self.last_raise_ms, RAISE_EVERY_MS, now_ms, |c| {
                (c + 1).min(self.max)
            });
        }
    }

    /// Applies `change` to the cap unless `last` (when this kind of change was last
    /// made) is less than `every_ms` ago; one caller wins a race for the same moment.
    fn adjust(
        &self,
        last: &AtomicU64,
        every_ms: u64,
        now_ms: u64,
        change: impl Fn(usize) -> usize,
    ) {
        let at = last.load(Ordering::Relaxed);
        if now_ms.saturating_sub(at) >= every_ms
            && last
                .compare_exchange(at, now_ms, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let _ = self
                .cap
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| Some(change(c)));
        }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOW: Duration = Duration::from_millis(100);

    #[test]
    fn refuses_beyond_the_cap_and_frees_on_drop() {
        let limit = InFlight::new(2, SLOW);
        let a = limit.try_enter();
        let b = limit.try_enter();
        assert!(a.is_some() && b.is_some());
        assert!(limit.try_enter().is_none());
        drop(a);
        assert!(limit.try_enter().is_some());
    }

    #[test]
    fn slow_requests_cut_the_cap_fast_ones_raise_it_back() {
        let limit = InFlight::new(256, SLOW);
        // A burst of slow requests within one cut period cuts once.
        for _ in 0..50 {
            limit.observe(Duration::from_millis(150), 1_000);
        }
        assert_eq!(limit.cap(), 192);
        // Slow for a second: cut every 100 ms, down to the floor of max / 16.
        for t in 0..10 {
            limit.observe(SLOW, 1_100 + t * 100);
        }
        assert_eq!(limit.cap(), 16);
        // Middling latency changes nothing; fast requests raise it by one per ms.
        limit.observe(Duration::from_millis(50), 3_000);
        assert_eq!(limit.cap(), 16);
        for t in 0..100 {
            limit.observe(Duration::from_millis(2), 3_000 + t);
        }
        assert_eq!(limit.cap(), 116);
        for t in 0..1_000 {
            limit.observe(Duration::from_millis(2), 4_000 + t);
        }
        assert_eq!(limit.cap(), 256, "never above the configured maximum");
    }
}
