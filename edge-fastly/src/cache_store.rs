//! The core's shared store (rate-limit buckets, ended sessions) on Fastly's cache, the
//! Core Cache API: shared by every request of the service in one POP, where Compute
//! itself keeps nothing between requests.
//!
//! The cache has no compare-and-swap. A write reads the object's version first and
//! refuses if it moved; two writes racing between that read and the insert both land
//! (the later wins), so under a burst of one client's requests in one POP an update may
//! be lost and the limit is looser by those requests. The cache may also evict an
//! object early: a client's bucket then starts full, a remembered ended session is
//! forgotten (its pass is accepted again until it expires). The key space is bounded by
//! the core (slots, buckets); every object lives at most [`LIFETIME`].

use std::time::Duration;

use fastly::cache::core::{insert, lookup, CacheKey};
use wr_edge_core::rate_limit::{SharedStore, StoreError};

use crate::stored::{decode, encode, next_version};

/// Every object's key is this and the core's key.
const KEY_PREFIX: &str = "wr-edge-store:";
/// How long an object lives at most after its last write (its contents carry their own
/// times; this only bounds the memory).
pub const LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// The store; stateless itself.
pub struct CacheStore;

fn cache_key(key: &str) -> CacheKey {
    CacheKey::from(format!("{KEY_PREFIX}{key}"))
}

impl CacheStore {
    fn read(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        match lookup(cache_key(key)).execute() {
            Ok(Some(found)) => Ok(decode(&found.user_metadata())),
            Ok(None) => Ok(None),
            Err(_) => Err(StoreError::Other),
        }
    }
}

impl SharedStore for CacheStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        // A failed read is an empty slot; the write that follows it then refuses (the
        // version it carries is 0 or stale), and the core counts that as contention.
        self.read(key).ok().flatten()
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let current = self.read(key)?.map(|(_, version)| version);
        if cas != 0 && current != Some(cas) {
            return Err(StoreError::CasMismatch);
        }
        let stored = encode(next_version(current), value);
        let body = insert(cache_key(key), LIFETIME)
            .user_metadata(CacheKey::from(stored))
            .known_length(0)
            .execute()
            .map_err(|_| StoreError::Other)?;
        body.finish().map_err(|_| StoreError::Other)
    }
}
