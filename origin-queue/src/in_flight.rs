//! Load shedding: a cap on the public API's requests in flight.
//!
//! Without it, a flood beyond what Redis can answer queues up inside the process and
//! every request waits longer, until clients time out. With it, a request that finds
//! the cap reached is answered at once with 503 + `Retry-After`, and the ones let in
//! wait at most about cap ÷ throughput.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts requests in flight against a cap.
pub struct InFlight {
    cap: usize,
    now: AtomicUsize,
}

/// One admitted request; leaving the scope frees its place.
pub struct Entered<'a>(&'a InFlight);

impl InFlight {
    /// A counter allowing `cap` requests at once.
    pub fn new(cap: usize) -> Self {
        InFlight {
            cap,
            now: AtomicUsize::new(0),
        }
    }

    /// A place for one more request, or `None` when `cap` are already in flight.
    pub fn try_enter(&self) -> Option<Entered<'_>> {
        self.now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.cap).then_some(n + 1)
            })
            .ok()
            .map(|_| Entered(self))
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

    #[test]
    fn refuses_beyond_the_cap_and_frees_on_drop() {
        let limit = InFlight::new(2);
        let a = limit.try_enter();
        let b = limit.try_enter();
        assert!(a.is_some() && b.is_some());
        assert!(limit.try_enter().is_none());
        drop(a);
        assert!(limit.try_enter().is_some());
    }
}
