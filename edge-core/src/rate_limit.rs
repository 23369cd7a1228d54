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
//!
//! A worker does not go to shared data for every request: it draws a [`lease`] of up to
//! `B` tokens at once and spends it from memory (the bound that costs is in [`lease`]).
//! A bucket's stored form and key are in `bucket`.
//!
//! [`lease`]: crate::lease

use std::sync::Mutex;

#[allow(deprecated)] // SipHash-2-4 itself is sound; std only deprecated the type's name.
use std::hash::{Hasher, SipHasher};

use crate::bucket::{self, Bucket};
use crate::config::RateLimit;
use crate::lease::{Lease, LeaseTable};
use crate::words::key_pair;

/// Compare-and-swap attempts before giving up; giving up counts as limited.
pub const MAX_CAS_ATTEMPTS: usize = 16;
/// One token, in micro-tokens.
const TOKEN: u64 = 1_000_000;

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
    /// SipHash keyed from the configuration, already fed the namespace: each
    /// fingerprint only hashes the id.
    #[allow(deprecated)]
    seeded: SipHasher,
    /// Tokens drawn from shared data at once, at most (`B`).
    lease_tokens: u32,
    /// This worker's leases.
    leases: Mutex<LeaseTable>,
}

impl Limiter {
    /// A limiter; `hash_key` must be the same in every worker (derive it from config).
    /// Leases are of `lease` tokens at most, and never more than a quarter of the burst
    /// (at least one token): see [`Limiter::lease_tokens`].
    pub fn new(
        namespace: &'static str,
        limit: RateLimit,
        slots: u32,
        hash_key: [u8; 32],
        lease: u32,
    ) -> Self {
        let (k0, k1) = key_pair(&hash_key);
        let slots = slots.max(1);
        Limiter {
            namespace,
            limit,
            slots,
            seeded: {
                #[allow(deprecated)]
                let mut seeded = SipHasher::new_with_keys(k0, k1);
                seeded.write(namespace.as_bytes());
                seeded
            },
            lease_tokens: lease.min(limit.burst / 4).max(1),
            leases: Mutex::new(LeaseTable::new(slots)),
        }
    }

    /// `B`: the most tokens one draw from shared data takes. A client can get at most
    /// `W × (B − 1)` requests more than the exact bucket in any interval, with `W`
    /// workers (see [`crate::lease`]).
    pub fn lease_tokens(&self) -> u32 {
        self.lease_tokens
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

    /// The fingerprint of client `id` (SipHash keyed from the configuration): what
    /// [`Limiter::take_fingerprinted`] takes, for a caller that remembers it.
    pub fn fingerprint(&self, id: &[u8]) -> u64 {
        #[allow(deprecated)]
        let mut hasher = self.seeded.clone();
        hasher.write(id);
        hasher.finish()
    }

    fn slot_key(&self, fingerprint: u64) -> String {
        bucket::key(self.namespace, fingerprint % u64::from(self.slots))
    }

    /// Takes one token for `id` at `now_ms`, or says why not: from this worker's lease
    /// when it holds one, else by drawing from the shared bucket: a full lease for a
    /// client this worker has met before, one token for a client it has not.
    pub fn take(&self, store: &dyn SharedStore, id: &[u8], now_ms: u64) -> Result<(), Limited> {
        self.take_fingerprinted(store, self.fingerprint(id), now_ms)
    }

    /// [`Limiter::take`] for the client whose [`Limiter::fingerprint`] is `fingerprint`.
    pub fn take_fingerprinted(
        &self,
        store: &dyn SharedStore,
        fingerprint: u64,
        now_ms: u64,
    ) -> Result<(), Limited> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if leases.spend(fingerprint, now_ms) {
            return Ok(());
        }
        let (unused, wanted) = match leases.take_entry(fingerprint) {
            Some(own) if own.fingerprint == fingerprint => (own.tokens, self.lease_tokens),
            Some(other) => {
                self.give_back(store, other, now_ms);
                (0, 1)
            }
            None => (0, 1),
        };
        let drawn = self.draw(store, fingerprint, unused, wanted, now_ms)?;
        leases.grant(fingerprint, drawn - 1, now_ms);
        Ok(())
    }

    /// Draws up to `wanted` tokens (at least one) from `fingerprint`'s shared bucket,
    /// after giving back the `unused` tokens of its expired lease, in one
    /// compare-and-swap.
    fn draw(
        &self,
        store: &dyn SharedStore,
        fingerprint: u64,
        unused: u32,
        wanted: u32,
        now_ms: u64,
    ) -> Result<u32, Limited> {
        let key = self.slot_key(fingerprint);
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
            bucket.micro_tokens = bucket
                .micro_tokens
                .saturating_add(u64::from(unused) * TOKEN)
                .min(self.capacity());
            if bucket.micro_tokens < TOKEN {
                let missing = TOKEN - bucket.micro_tokens;
                let wait_ms = missing.div_ceil(self.refill_per_ms());
                let secs = wait_ms.div_ceil(1000).clamp(1, u64::from(u32::MAX));
                return Err(Limited::Empty {
                    retry_after_secs: secs as u32,
                });
            }
            let drawn = (bucket.micro_tokens / TOKEN).min(u64::from(wanted.max(1)));
            bucket.micro_tokens -= drawn * TOKEN;
            match store.set(&key, &bucket.encode(), cas) {
                Ok(()) => return Ok(drawn as u32),
                Err(StoreError::CasMismatch) => continue,
                Err(StoreError::Other) => return Err(Limited::StoreFailed),
            }
        }
        Err(Limited::Contention)
    }

    /// Gives the unused tokens of another client's lease (evicted from this worker's
    /// table) back to its shared bucket, unless that slot has changed hands. Best
    /// effort: tokens that cannot be given back only make that client stricter. A spent
    /// lease (a client seen once) has nothing to give back and costs no host call.
    fn give_back(&self, store: &dyn SharedStore, lease: Lease, now_ms: u64) {
        if lease.tokens == 0 {
            return;
        }
        let key = self.slot_key(lease.fingerprint);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some((bytes, cas)) = store.get(&key) else {
                return;
            };
            let Some(bucket) = Bucket::decode(&bytes) else {
                return;
            };
            if bucket.fingerprint != lease.fingerprint {
                return;
            }
            let mut bucket = self.refilled(bucket, now_ms);
            bucket.micro_tokens = bucket
                .micro_tokens
                .saturating_add(u64::from(lease.tokens) * TOKEN)
                .min(self.capacity());
            match store.set(&key, &bucket.encode(), cas) {
                Err(StoreError::CasMismatch) => continue,
                _ => return,
            }
        }
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
            16,
        )
    }

    /// Requests admitted for `id` at `now_ms`, out of `n`.
    fn admitted(l: &Limiter, store: &dyn SharedStore, id: &[u8], n: usize, now_ms: u64) -> usize {
        (0..n).filter(|_| l.take(store, id, now_ms).is_ok()).count()
    }

    /// A [`LocalStore`] that counts the calls made to it.
    #[derive(Default)]
    struct Counting {
        inner: LocalStore,
        calls: std::cell::Cell<usize>,
    }

    impl SharedStore for Counting {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.calls.set(self.calls.get() + 1);
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            self.calls.set(self.calls.get() + 1);
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn a_lease_is_at_most_a_quarter_of_the_burst() {
        assert_eq!(limiter(1.0, 1_000, 64).lease_tokens(), 16);
        assert_eq!(limiter(1.0, 20, 64).lease_tokens(), 5);
        assert_eq!(limiter(1.0, 3, 64).lease_tokens(), 1);
    }

    #[test]
    fn a_lease_serves_requests_without_shared_data() {
        let store = Counting::default();
        let l = limiter(1.0, 1_000, 64);
        assert_eq!(admitted(&l, &store, b"a", 1, 0), 1);
        assert_eq!(store.calls.get(), 2, "the first request: one get, one set");
        assert_eq!(admitted(&l, &store, b"a", 16, 0), 16);
        assert_eq!(store.calls.get(), 4, "one get and one set for the next 16");
        assert_eq!(admitted(&l, &store, b"a", 1, 0), 1);
        assert_eq!(store.calls.get(), 6);
    }

    #[test]
    fn a_first_request_draws_one_token_not_a_lease() {
        let store = LocalStore::default();
        let workers = [limiter(0.001, 64, 64), limiter(0.001, 64, 64)];
        assert_eq!(admitted(&workers[0], &store, b"a", 1, 0), 1);
        assert_eq!(admitted(&workers[1], &store, b"a", 100, 0), 63);
    }

    #[test]
    fn one_request_clients_cost_one_draw_each_and_nothing_to_give_back() {
        let store = Counting::default();
        // 64 lease entries for 1,000 clients: nearly every request evicts an entry.
        let l = limiter(1.0, 1_000, 64);
        for i in 0u32..1_000 {
            assert_eq!(l.take(&store, &i.to_le_bytes(), 0), Ok(()));
        }
        assert_eq!(store.calls.get(), 2 * 1_000, "one get and one set each");
    }

    #[test]
    fn an_expired_lease_goes_back_so_one_worker_gets_the_exact_burst() {
        let store = LocalStore::default();
        // No refill to speak of: every token is the burst's.
        let l = limiter(0.001, 64, 64);
        // The second request draws a lease and spends one token of it.
        assert_eq!(admitted(&l, &store, b"a", 2, 0), 2);
        let later = crate::lease::LEASE_MS;
        assert_eq!(admitted(&l, &store, b"a", 100, later), 62);
    }

    #[test]
    fn an_evicted_lease_goes_back_to_its_own_client() {
        let store = LocalStore::default();
        let l = limiter(0.001, 64, 2);
        // Two clients in different shared slots but on the same lease entry.
        let (a, b) = (0u32..)
            .map(|i| i.to_le_bytes())
            .flat_map(|a| (0u32..64).map(move |j| (a, (j + 1000).to_le_bytes())))
            .find(|(a, b)| {
                let (fa, fb) = (l.fingerprint(a), l.fingerprint(b));
                fa % 2 != fb % 2 && (fa >> 32) % 2 == (fb >> 32) % 2
            })
            .unwrap();
        assert_eq!(admitted(&l, &store, &a, 2, 0), 2);
        assert_eq!(admitted(&l, &store, &b, 1, 0), 1);
        assert_eq!(admitted(&l, &store, &a, 100, 0), 62);
    }

    #[test]
    fn two_workers_exceed_the_bucket_by_at_most_w_times_b_minus_1() {
        let store = LocalStore::default();
        let (burst, rps) = (40, 1_000.0);
        let workers = [limiter(rps, burst, 64), limiter(rps, burst, 64)];
        let b = workers[0].lease_tokens() as usize;
        // Each worker draws a lease (on its second request) and spends one token of
        // it; the other drains the rest; then the shared bucket refills completely
        // while the leases are held.
        for w in &workers {
            assert_eq!(admitted(w, &store, b"a", 2, 0), 2);
        }
        assert!(admitted(&workers[0], &store, b"a", 100, 0) < burst as usize);
        let refilled = 40; // ms: 1,000 per second refills 40 tokens
        let got: usize = workers
            .iter()
            .map(|w| admitted(w, &store, b"a", 1_000, refilled))
            .sum();
        assert!(got > burst as usize, "the leases did add: {got}");
        assert!(
            got <= burst as usize + 2 * (b - 1),
            "{got} > {burst} + 2 x ({b} - 1)"
        );
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
