//! In-process token buckets for the per-client and per-visitor limits.
//!
//! Each origin-queue replica limits on its own (the edge filter holds the fleet-wide
//! per-client limit); memory is bounded by `max_keys`: when full, idle buckets are
//! dropped, and if none is idle new keys are refused rather than tracked.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// Sustained rate and burst.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    /// Requests per second.
    pub per_second: f64,
    /// Requests at once.
    pub burst: f64,
}

impl Limit {
    /// Parses `RATE` or `RATE:BURST` (burst defaults to twice the rate).
    pub fn parse(text: &str) -> Result<Limit, String> {
        let (rate, burst) = match text.split_once(':') {
            Some((r, b)) => (r, Some(b)),
            None => (text, None),
        };
        let per_second: f64 = rate
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: rate is not a number"))?;
        let burst: f64 = match burst {
            Some(b) => b
                .trim()
                .parse()
                .map_err(|_| format!("{text:?}: burst is not a number"))?,
            None => per_second * 2.0,
        };
        if !(per_second > 0.0 && per_second <= 1e6 && (1.0..=1e6).contains(&burst)) {
            return Err(format!(
                "{text:?}: rate must be in (0, 1e6] and burst in [1, 1e6]"
            ));
        }
        Ok(Limit { per_second, burst })
    }
}

/// Token buckets by key.
pub struct Limiter<K> {
    limit: Limit,
    max_keys: usize,
    buckets: Mutex<Buckets<K>>,
}

struct Buckets<K> {
    by_key: HashMap<K, (f64, Instant)>,
    /// When idle buckets were last swept out: at most once a second, so that a full
    /// table of busy keys does not cost a full scan per request.
    swept: Option<Instant>,
}

/// Shortest time between two sweeps of a full table.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl<K: Hash + Eq> Limiter<K> {
    /// A limiter tracking at most `max_keys` keys.
    pub fn new(limit: Limit, max_keys: usize) -> Self {
        Limiter {
            limit,
            max_keys,
            buckets: Mutex::new(Buckets {
                by_key: HashMap::new(),
                swept: None,
            }),
        }
    }

    /// Takes a token for `key`, or returns the seconds to wait (at least 1). The key
    /// is copied only when it is new.
    pub fn take<Q>(&self, key: &Q, now: Instant) -> Result<(), u32>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut table = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let refill = |(tokens, at): (f64, Instant)| {
            (self.limit.burst).min(
                tokens + now.saturating_duration_since(at).as_secs_f64() * self.limit.per_second,
            )
        };
        let Buckets {
            by_key: buckets,
            swept,
        } = &mut *table;
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            if swept.is_none_or(|at| now.saturating_duration_since(at) >= SWEEP_EVERY) {
                buckets.retain(|_, b| refill(*b) < self.limit.burst);
                *swept = Some(now);
            }
            if buckets.len() >= self.max_keys {
                return Err(1);
            }
        }

        if !buckets.contains_key(key) {
            buckets.insert(key.to_owned(), (self.limit.burst, now));
        }
        let Some(bucket) = buckets.get_mut(key) else {
            return Err(1);
        };
        let tokens = refill(*bucket);
        if tokens < 1.0 {
            *bucket = (tokens, now);
            return Err(((1.0 - tokens) / self.limit.per_second).ceil().max(1.0) as u32);
        }
        *bucket = (tokens - 1.0, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill_and_bounded_keys() {
        let l = Limiter::new(
            Limit {
                per_second: 2.0,
                burst: 3.0,
            },
            2,
        );
        let t = Instant::now();
        assert!((0..3).all(|_| l.take(&"a", t).is_ok()));
        assert_eq!(l.take(&"a", t), Err(1));
        assert_eq!(l.take(&"a", t + Duration::from_millis(500)), Ok(()));
        assert_eq!(l.take(&"b", t), Ok(()));
        // Full, and neither bucket is idle: a third key is refused, not tracked.
        assert_eq!(l.take(&"c", t), Err(1));
        // Later both are idle again and make room.
        assert_eq!(l.take(&"c", t + Duration::from_secs(10)), Ok(()));
    }

    #[test]
    fn parse_limits() {
        assert_eq!(
            Limit::parse("50").unwrap(),
            Limit {
                per_second: 50.0,
                burst: 100.0
            }
        );
        assert_eq!(
            Limit::parse("5:20").unwrap(),
            Limit {
                per_second: 5.0,
                burst: 20.0
            }
        );
        assert!(Limit::parse("0").is_err());
        assert!(Limit::parse("x").is_err());
        assert!(Limit::parse("1:0").is_err());
    }
}
