//! Token buckets in proxy-wasm shared data, shared by every Envoy worker.
//!
//! Each Envoy worker runs its own copy of the filter, so per-client state lives in the
//! host's shared data and every update is a compare-and-swap: read the bucket and its
//! CAS token, take a token, write back only if nobody wrote in between, else retry.
//!
//! Shared data has no delete, so the key space is bounded up front: a client maps to
//! one of `slots` keys by SipHash keyed with a secret derived from the key ring, so an
//! attacker cannot aim collisions at a victim. A slot remembers the fingerprint of its
//! last client; a different client takes the slot over once the old bucket has refilled
//! completely (it was idle), and otherwise shares it, which can only make two colliding
//! busy clients stricter, never looser.

#[allow(deprecated)] // SipHash-2-4 itself is sound; std only deprecated the type's name.
use std::hash::{Hasher, SipHasher};

use crate::config::RateLimit;

/// Compare-and-swap attempts before giving up; giving up counts as limited.
pub const MAX_CAS_ATTEMPTS: usize = 16;
/// One token, in micro-tokens.
const TOKEN: u64 = 1_000_000;
/// Encoded bucket size: fingerprint, micro-tokens, last refill (ms), all u64 LE.
const STATE_LEN: usize = 24;

/// The host's shared key-value store with compare-and-swap.
pub trait SharedStore {
    /// The value and its CAS token, or `None` if the key was never set.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Stores `value` if the key's CAS token is still `cas` (0: unconditionally).
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError>;
}

/// Why a shared-data write failed.
#[derive(Debug, PartialEq, Eq)]
pub enum StoreError {
    /// Someone else wrote first: re-read and retry.
    CasMismatch,
    /// The host refused for another reason.
    Other,
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Limited {
    /// The bucket is empty: retry after this many seconds (at least 1).
    Empty { retry_after_secs: u32 },
    /// Too many concurrent writers on one slot: refused rather than let through.
    Contention,
    /// The host's store failed: refused (fail closed).
    StoreFailed,
}

/// A limiter for one namespace (`client`, `visitor`, `queue`).
pub struct Limiter {
    namespace: &'static str,
    limit: RateLimit,
    slots: u32,
    sip_keys: (u64, u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    fingerprint: u64,
    micro_tokens: u64,
    last_ms: u64,
}

impl Bucket {
    fn decode(bytes: &[u8]) -> Option<Bucket> {
        let bytes: &[u8; STATE_LEN] = bytes.try_into().ok()?;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        Some(Bucket {
            fingerprint: word(0),
            micro_tokens: word(1),
            last_ms: word(2),
        })
    }

    fn encode(&self) -> [u8; STATE_LEN] {
        let mut out = [0u8; STATE_LEN];
        out[..8].copy_from_slice(&self.fingerprint.to_le_bytes());
        out[8..16].copy_from_slice(&self.micro_tokens.to_le_bytes());
        out[16..].copy_from_slice(&self.last_ms.to_le_bytes());
        out
    }
}

impl Limiter {
    /// A limiter; `hash_key` must be the same in every worker (derive it from config).
    pub fn new(namespace: &'static str, limit: RateLimit, slots: u32, hash_key: [u8; 32]) -> Self {
        let half = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&hash_key[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        Limiter {
            namespace,
            limit,
            slots: slots.max(1),
            sip_keys: (half(0), half(1)),
        }
    }

    fn capacity(&self) -> u64 {
        u64::from(self.limit.burst) * TOKEN
    }

    /// Micro-tokens added per millisecond (at least 1).
    fn refill_per_ms(&self) -> u64 {
        ((self.limit.requests_per_second * 1000.0).round() as u64).max(1)
    }

    fn refilled(&self, bucket: Bucket, now_ms: u64) -> Bucket {
        let elapsed = now_ms.saturating_sub(bucket.last_ms);
        let tokens = bucket
            .micro_tokens
            .saturating_add(elapsed.saturating_mul(self.refill_per_ms()))
            .min(self.capacity());
        Bucket {
            micro_tokens: tokens,
            last_ms: now_ms.max(bucket.last_ms),
            ..bucket
        }
    }

    fn slot_of(&self, id: &[u8]) -> (String, u64) {
        #[allow(deprecated)]
        let mut hasher = SipHasher::new_with_keys(self.sip_keys.0, self.sip_keys.1);
        hasher.write(self.namespace.as_bytes());
        hasher.write(id);
        let fingerprint = hasher.finish();
        let slot = fingerprint % u64::from(self.slots);
        (format!("wr:rl:{}:{slot}", self.namespace), fingerprint)
    }

    /// Takes one token for `id` at `now_ms`, or says why not.
    pub fn take(&self, store: &dyn SharedStore, id: &[u8], now_ms: u64) -> Result<(), Limited> {
        let (key, fingerprint) = self.slot_of(id);
        let full = Bucket {
            fingerprint,
            micro_tokens: self.capacity(),
            last_ms: now_ms,
        };
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (stored, cas) = match store.get(&key) {
                Some((bytes, cas)) => (Bucket::decode(&bytes), cas),
                None => (None, 0),
            };
            let mut bucket = match stored {
                None => full,
                Some(old) => {
                    let old = self.refilled(old, now_ms);
                    let idle = old.micro_tokens >= self.capacity();
                    if old.fingerprint != fingerprint && idle {
                        full
                    } else {
                        old
                    }
                }
            };
            if bucket.micro_tokens < TOKEN {
                let missing = TOKEN - bucket.micro_tokens;
                let wait_ms = missing.div_ceil(self.refill_per_ms());
                let secs = wait_ms.div_ceil(1000).clamp(1, u64::from(u32::MAX));
                return Err(Limited::Empty {
                    retry_after_secs: secs as u32,
                });
            }
            bucket.micro_tokens -= TOKEN;
            match store.set(&key, &bucket.encode(), cas) {
                Ok(()) => return Ok(()),
                Err(StoreError::CasMismatch) => continue,
                Err(StoreError::Other) => return Err(Limited::StoreFailed),
            }
        }
        Err(Limited::Contention)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local_store::LocalStore;

    fn limiter(rps: f64, burst: u32, slots: u32) -> Limiter {
        Limiter::new(
            "client",
            RateLimit {
                requests_per_second: rps,
                burst,
            },
            slots,
            [7; 32],
        )
    }

    #[test]
    fn burst_then_rate() {
        let store = LocalStore::default();
        let l = limiter(10.0, 5, 1024);
        for _ in 0..5 {
            assert_eq!(l.take(&store, b"a", 1_000), Ok(()));
        }
        assert_eq!(
            l.take(&store, b"a", 1_000),
            Err(Limited::Empty {
                retry_after_secs: 1
            })
        );
        // 10 per second: one token every 100 ms.
        assert_eq!(
            l.take(&store, b"a", 1_099),
            Err(Limited::Empty {
                retry_after_secs: 1
            })
        );
        assert_eq!(l.take(&store, b"a", 1_100), Ok(()));
        // Another client has its own bucket.
        assert_eq!(l.take(&store, b"b", 1_100), Ok(()));
    }

    #[test]
    fn slow_rates_give_long_retry_after() {
        let store = LocalStore::default();
        let l = limiter(0.1, 1, 1024);
        assert_eq!(l.take(&store, b"a", 0), Ok(()));
        assert_eq!(
            l.take(&store, b"a", 0),
            Err(Limited::Empty {
                retry_after_secs: 10
            })
        );
    }

    #[test]
    fn key_space_is_bounded_and_idle_slots_are_taken_over() {
        let store = LocalStore::default();
        let l = limiter(1.0, 1, 4);
        for i in 0u32..1000 {
            let _ = l.take(&store, &i.to_le_bytes(), 0);
        }
        assert!(store.len() <= 4);
        // Much later every slot is idle: a new client always gets its full burst.
        assert_eq!(l.take(&store, b"late", 1_000_000), Ok(()));
    }

    #[test]
    fn cas_conflicts_are_retried_then_refused() {
        let store = LocalStore::default();
        let l = limiter(10.0, 5, 16);
        store.fail_next_writes(3);
        assert_eq!(l.take(&store, b"a", 0), Ok(()));
        store.fail_next_writes(MAX_CAS_ATTEMPTS);
        assert_eq!(l.take(&store, b"a", 0), Err(Limited::Contention));
    }

    #[test]
    fn clock_going_backwards_never_adds_tokens() {
        let store = LocalStore::default();
        let l = limiter(1.0, 1, 16);
        assert_eq!(l.take(&store, b"a", 10_000), Ok(()));
        assert!(l.take(&store, b"a", 0).is_err());
        assert!(l.take(&store, b"a", 10_500).is_err());
        assert_eq!(l.take(&store, b"a", 11_000), Ok(()));
    }

    #[test]
    fn corrupt_state_is_replaced() {
        let store = LocalStore::default();
        let l = limiter(1.0, 2, 1);
        store.set("wr:rl:client:0", &[1, 2, 3], 0).unwrap();
        assert_eq!(l.take(&store, b"a", 0), Ok(()));
    }
}
