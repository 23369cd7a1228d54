//! Sessions the backend ended, remembered by this edge so that their passes are refused
//! from then on (on every worker of an Envoy: the store is proxy-wasm shared data; in an
//! isolate or a component instance, its [`crate::local_store::LocalStore`]).
//!
//! An ended session is remembered by (event, visitor) with the second it ended: a pass of
//! that visitor for that event issued at or before that second is refused until the
//! remembered pass would have expired anyway. A pass issued later (the visitor waited in
//! line again and was admitted anew) is not.
//!
//! Shared data has no delete and no expiry, so the memory is bounded up front: an entry
//! goes to one of [`BUCKETS`] keys by SipHash keyed with a secret derived from the key
//! ring (nobody can aim entries at one bucket), and a bucket holds at most
//! [`PER_BUCKET`] entries. Entries past their expiry make room first; when a bucket is
//! still full, the entry that expires soonest is forgotten (and counted: see
//! [`Recorded::forgotten`]). So an edge remembers at least `BUCKETS × PER_BUCKET`
//! (131,072) live ended sessions before it forgets one, in at most 2 MiB.

#[allow(deprecated)] // SipHash-2-4 itself is sound; std only deprecated the type's name.
use std::hash::{Hasher, SipHasher};

use crate::rate_limit::{SharedStore, StoreError, MAX_CAS_ATTEMPTS};
use crate::words::{key_pair, le_u64};

/// Keys the ended sessions are spread over.
pub const BUCKETS: u64 = 4_096;
/// Entries one bucket holds at most.
pub const PER_BUCKET: usize = 32;
/// One entry: the (event, visitor) fingerprint, the second the session ended and the
/// second its pass stops being valid anyway (leeway included), little-endian.
const ENTRY_LEN: usize = 16;
/// Every bucket's key is this and its number.
const KEY_PREFIX: &str = "wr:ended:";

/// One remembered end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    fingerprint: u64,
    ended_at: u32,
    until: u32,
}

impl Entry {
    fn decode(bytes: &[u8]) -> Entry {
        Entry {
            fingerprint: le_u64(&bytes[..8]),
            ended_at: le_u64(&bytes[8..12]) as u32,
            until: le_u64(&bytes[12..16]) as u32,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.fingerprint.to_le_bytes());
        out.extend_from_slice(&self.ended_at.to_le_bytes());
        out.extend_from_slice(&self.until.to_le_bytes());
    }
}

/// What recording an end did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Live entries forgotten to make room (0 unless the bucket was full).
    pub forgotten: u32,
}

/// The ended sessions of one configuration.
pub struct EndedSessions {
    #[allow(deprecated)]
    seeded: SipHasher,
}

impl EndedSessions {
    /// A registry whose bucket choice is keyed by `hash_key` (derive it from the key
    /// ring: the same in every worker).
    pub fn new(hash_key: [u8; 32]) -> EndedSessions {
        let (k0, k1) = key_pair(&hash_key);
        #[allow(deprecated)]
        EndedSessions {
            seeded: SipHasher::new_with_keys(k0, k1),
        }
    }

    /// Remembers that `visitor`'s session of `event` ended at `ended_at` (unix seconds),
    /// until `until` (when its pass would have expired, leeway included).
    pub fn record(
        &self,
        store: &dyn SharedStore,
        event: &str,
        visitor: &str,
        ended_at: u64,
        until: u64,
    ) -> Result<Recorded, StoreError> {
        let fingerprint = self.fingerprint(event, visitor);
        let key = bucket_key(fingerprint);
        let entry = Entry {
            fingerprint,
            ended_at: clamp_secs(ended_at),
            until: clamp_secs(until),
        };
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (bytes, cas) = store.get(&key).unwrap_or_default();
            let (value, recorded) = with_entry(&bytes, entry);
            match store.set(&key, &value, cas) {
                Ok(()) => return Ok(recorded),
                Err(StoreError::CasMismatch) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::CasMismatch)
    }

    /// True if `visitor`'s session of `event` ended at this edge and a pass issued at
    /// `issued_at` (unix seconds) belongs to it; `now` in unix seconds.
    pub fn has_ended(
        &self,
        store: &dyn SharedStore,
        event: &str,
        visitor: &str,
        issued_at: u64,
        now: u64,
    ) -> bool {
        let fingerprint = self.fingerprint(event, visitor);
        self.has_ended_fingerprint(store, fingerprint, issued_at, now)
    }

    /// [`EndedSessions::has_ended`] by the (event, visitor) fingerprint
    /// ([`EndedSessions::fingerprint`], which a caller may keep).
    pub fn has_ended_fingerprint(
        &self,
        store: &dyn SharedStore,
        fingerprint: u64,
        issued_at: u64,
        now: u64,
    ) -> bool {
        let Some((bytes, _)) = store.get(&bucket_key(fingerprint)) else {
            return false;
        };
        let ended = entries(&bytes).any(|e| {
            e.fingerprint == fingerprint
                && u64::from(e.until) >= now
                && issued_at <= u64::from(e.ended_at)
        });
        ended
    }

    /// The keyed fingerprint of (event, visitor) that entries are found by.
    pub fn fingerprint(&self, event: &str, visitor: &str) -> u64 {
        let mut hasher = self.seeded.clone();
        hasher.write(event.as_bytes());
        hasher.write_u8(0xff); // not a byte of an id: "ab"+"c" and "a"+"bc" differ
        hasher.write(visitor.as_bytes());
        hasher.finish()
    }
}

/// The bucket's entries (a stored value of another length is read as far as it goes).
fn entries(bytes: &[u8]) -> impl Iterator<Item = Entry> + '_ {
    bytes.chunks_exact(ENTRY_LEN).map(Entry::decode)
}

/// The bucket `bytes` with `entry` in it: the visitor's earlier entry replaced (the
/// later end wins), entries past their `until` dropped, and if it is still full, the
/// entry expiring soonest forgotten.
fn with_entry(bytes: &[u8], entry: Entry) -> (Vec<u8>, Recorded) {
    let now = entry.ended_at;
    let mut kept: Vec<Entry> = entries(bytes)
        .filter(|e| e.until >= now && e.fingerprint != entry.fingerprint)
        .collect();
    let merged = entries(bytes)
        .filter(|e| e.fingerprint == entry.fingerprint)
        .fold(entry, |acc, e| Entry {
            fingerprint: acc.fingerprint,
            ended_at: acc.ended_at.max(e.ended_at),
            until: acc.until.max(e.until),
        });
    let mut forgotten = 0;
    while kept.len() >= PER_BUCKET {
        let soonest = (0..kept.len()).min_by_key(|&i| kept[i].until).unwrap_or(0);
        kept.swap_remove(soonest);
        forgotten += 1;
    }
    kept.push(merged);
    let mut out = Vec::with_capacity(kept.len() * ENTRY_LEN);
    for e in &kept {
        e.encode(&mut out);
    }
    (out, Recorded { forgotten })
}

fn bucket_key(fingerprint: u64) -> String {
    // The low bits pick the bucket; the whole fingerprint is compared inside it. Built
    // by hand: `format!` costs the hot path (see `bucket::key`).
    let mut key = String::with_capacity(KEY_PREFIX.len() + 4);
    key.push_str(KEY_PREFIX);
    crate::bucket::push_decimal(&mut key, fingerprint % BUCKETS);
    key
}

fn clamp_secs(secs: u64) -> u32 {
    u32::try_from(secs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local_store::LocalStore;

    fn registry() -> EndedSessions {
        EndedSessions::new([7; 32])
    }

    #[test]
    fn a_pass_issued_before_the_end_is_refused_until_it_expires() {
        let (ended, store) = (registry(), LocalStore::default());
        ended.record(&store, "e", "v", 1_000, 1_600).unwrap();
        assert!(ended.has_ended(&store, "e", "v", 900, 1_001));
        assert!(ended.has_ended(&store, "e", "v", 1_000, 1_600));
        assert!(!ended.has_ended(&store, "e", "v", 900, 1_601));
    }

    #[test]
    fn a_pass_issued_after_the_end_is_a_new_session() {
        let (ended, store) = (registry(), LocalStore::default());
        ended.record(&store, "e", "v", 1_000, 1_600).unwrap();
        assert!(!ended.has_ended(&store, "e", "v", 1_001, 1_002));
    }

    #[test]
    fn other_visitors_and_events_are_untouched() {
        let (ended, store) = (registry(), LocalStore::default());
        ended.record(&store, "e", "v", 1_000, 1_600).unwrap();
        assert!(!ended.has_ended(&store, "e", "w", 900, 1_001));
        assert!(!ended.has_ended(&store, "f", "v", 900, 1_001));
        assert!(!ended.has_ended(&store, "ev", "", 900, 1_001));
    }

    #[test]
    fn a_repeated_end_keeps_one_entry() {
        let (ended, store) = (registry(), LocalStore::default());
        ended.record(&store, "e", "v", 1_000, 1_600).unwrap();
        ended.record(&store, "e", "v", 1_000, 1_600).unwrap();
        let key = bucket_key(ended.fingerprint("e", "v"));
        assert_eq!(store.get(&key).unwrap().0.len(), ENTRY_LEN);
    }

    #[test]
    fn a_full_bucket_forgets_the_entry_expiring_soonest_and_says_so() {
        let mut bytes = Vec::new();
        for i in 0..PER_BUCKET as u32 {
            let e = Entry {
                fingerprint: u64::from(i) + 100,
                ended_at: 10,
                until: 1_000 + i,
            };
            e.encode(&mut bytes);
        }
        let new = Entry {
            fingerprint: 1,
            ended_at: 20,
            until: 5_000,
        };
        let (out, recorded) = with_entry(&bytes, new);
        assert_eq!(recorded.forgotten, 1);
        let kept: Vec<Entry> = entries(&out).collect();
        assert_eq!(kept.len(), PER_BUCKET);
        assert!(kept.iter().all(|e| e.until != 1_000));
        assert!(kept.contains(&new));
    }

    #[test]
    fn expired_entries_make_room_before_anything_live_is_forgotten() {
        let mut bytes = Vec::new();
        for i in 0..PER_BUCKET as u64 {
            let until = if i == 3 { 5 } else { 1_000 };
            Entry {
                fingerprint: i + 100,
                ended_at: 1,
                until,
            }
            .encode(&mut bytes);
        }
        let new = Entry {
            fingerprint: 1,
            ended_at: 20,
            until: 5_000,
        };
        let (_, recorded) = with_entry(&bytes, new);
        assert_eq!(recorded.forgotten, 0);
    }

    #[test]
    fn a_contended_bucket_is_retried() {
        let (ended, store) = (registry(), LocalStore::default());
        store.fail_next_writes(3);
        ended.record(&store, "e", "v", 1_000, 1_600).unwrap();
        assert!(ended.has_ended(&store, "e", "v", 1_000, 1_001));
    }
}
