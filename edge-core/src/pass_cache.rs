//! Passes whose signature this worker has already checked, so that the HMAC runs once
//! per pass per worker instead of on every request of an admitted visitor.
//!
//! Why it is safe:
//! - **The key is the whole token**, MAC included: only the exact bytes of a token whose
//!   signature verified can hit. A forged or altered token differs somewhere, misses and
//!   is verified in full (constant time) like any other.
//! - **Only the signature is remembered**, not the verdict: expiry, the validity window,
//!   the lifetime bound and the event are checked again on every hit, against the
//!   claims the signature covered.
//! - **Key-ring changes empty it**: it belongs to the [`Engine`](crate::decision::Engine)
//!   of one configuration, and a new configuration (a rotated or removed key) builds a
//!   new engine with an empty cache.
//! - **Bounded**: two generations of at most [`GENERATION`] entries each; when the
//!   current one is full it becomes the old one and the old one is dropped, so a pass in
//!   use stays (a hit in the old generation moves it forward) and a flood of distinct
//!   passes costs each one HMAC plus an insert, never more memory. Tokens are at most
//!   512 bytes: at most about 2 × 1,024 × (512 + 200) bytes ≈ 1.5 MB per worker, about
//!   0.6 MB with passes of today's size (~150 bytes).
//! - **No attacker-chosen collisions**: the table's hash is SipHash keyed from the key
//!   ring, which attackers do not know.

use std::collections::HashMap;
use std::hash::BuildHasher;

use wr_pass::{Claims, KeyRing, Rejection, TokenKind, Validity};

/// Most entries per generation.
pub const GENERATION: usize = 1_024;

/// SipHash-1-3 with a secret key, as the table's hasher.
#[derive(Clone, Copy)]
struct KeyedSip(u64, u64);

impl BuildHasher for KeyedSip {
    #[allow(deprecated)]
    type Hasher = std::hash::SipHasher;

    #[allow(deprecated)]
    fn build_hasher(&self) -> Self::Hasher {
        std::hash::SipHasher::new_with_keys(self.0, self.1)
    }
}

/// Verified passes of one worker: token bytes → the claims its signature covers.
pub struct PassCache {
    current: HashMap<Vec<u8>, Claims, KeyedSip>,
    old: HashMap<Vec<u8>, Claims, KeyedSip>,
}

impl PassCache {
    /// An empty cache whose table hash is keyed by `hash_key` (derive it from the key
    /// ring).
    pub fn new(hash_key: [u8; 32]) -> PassCache {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&hash_key[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        let hasher = KeyedSip(word(0), word(1));
        PassCache {
            current: HashMap::with_capacity_and_hasher(GENERATION, hasher),
            old: HashMap::with_hasher(hasher),
        }
    }

    /// Checks the pass `token` for `event` as [`KeyRing::verify`] does, with the HMAC
    /// only the first time this token is seen (a token whose signature verified is
    /// remembered, whatever its claims say now); the visitor id if it admits.
    pub fn verify(
        &mut self,
        keys: &KeyRing,
        token: &[u8],
        validity: Validity,
        event: &str,
    ) -> Result<String, Rejection> {
        if let Some(claims) = self.get(token) {
            validity.check(claims, Some(event))?;
            return Ok(claims.visitor.clone());
        }
        let claims = keys.verify_signature(TokenKind::Pass, token)?;
        let checked = validity.check(&claims, Some(event));
        let visitor = claims.visitor.clone();
        self.insert(token.to_vec(), claims);
        checked.map(|()| visitor)
    }

    /// The claims of `token` if its signature was verified before.
    pub fn get(&mut self, token: &[u8]) -> Option<&Claims> {
        if !self.current.contains_key(token) {
            let (key, claims) = self.old.remove_entry(token)?;
            self.insert(key, claims);
        }
        self.current.get(token)
    }

    /// Remembers that `token`'s signature verified, with its claims.
    pub fn insert(&mut self, token: Vec<u8>, claims: Claims) {
        if self.current.len() >= GENERATION {
            self.old = std::mem::replace(
                &mut self.current,
                HashMap::with_capacity_and_hasher(GENERATION, *self.old.hasher()),
            );
        }
        self.current.insert(token, claims);
    }

    /// Entries held (both generations).
    pub fn len(&self) -> usize {
        self.current.len() + self.old.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(i: u64) -> Claims {
        Claims::new("concert", &format!("v{i}"), 0, 600)
    }

    #[test]
    fn only_the_exact_token_hits() {
        let mut cache = PassCache::new([7; 32]);
        cache.insert(b"p1.k1.claims.mac".to_vec(), claims(1));
        assert!(cache.get(b"p1.k1.claims.mac").is_some());
        assert!(
            cache.get(b"p1.k1.claims.maC").is_none(),
            "another MAC misses"
        );
        assert!(cache.get(b"p1.k1.claims.ma").is_none());
    }

    #[test]
    fn a_flood_of_distinct_passes_stays_bounded_and_keeps_a_pass_in_use() {
        let mut cache = PassCache::new([7; 32]);
        cache.insert(b"in-use".to_vec(), claims(0));
        for i in 0..10 * GENERATION as u64 {
            cache.insert(format!("flood-{i}").into_bytes(), claims(i));
            // The visitor in session keeps sending requests meanwhile.
            if i % 500 == 0 {
                assert!(cache.get(b"in-use").is_some(), "evicted at {i}");
            }
            assert!(cache.len() <= 2 * GENERATION);
        }
    }
}
