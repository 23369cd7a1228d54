//! Passes whose signature this worker has already checked, so that the HMAC runs once
//! per pass per worker instead of on every request of an admitted visitor.
//!
//! Why it is safe:
//! - **A hit needs the whole token**, MAC included: only the exact bytes of a token
//!   whose signature verified can hit. A forged or altered token differs somewhere,
//!   misses and is verified in full (constant time) like any other.
//! - **Only the signature is remembered**, not the verdict: expiry, the validity window,
//!   the lifetime bound and the event are checked again on every hit, against the
//!   claims the signature covered.
//! - **Key-ring changes empty it**: it belongs to the [`Engine`](crate::decision::Engine)
//!   of one configuration, and a new configuration (a rotated or removed key) builds a
//!   new engine with an empty cache.
//! - **Bounded**: two generations of at most [`GENERATION`] entries each; when the
//!   current one is full it becomes the old one and the old one is emptied, so a pass in
//!   use stays (a hit in the old generation moves it forward) and a flood of distinct
//!   passes costs each one HMAC plus an insert, never more memory. Tokens are at most
//!   512 bytes: at most about 2 × 1,024 × (512 + 200) bytes ≈ 1.5 MB per worker, about
//!   0.6 MB with passes of today's size (~150 bytes).
//! - **A tag only places an entry**: entries are found by a 64-bit tag of the token's
//!   last [`TAG_BYTES`] bytes (its MAC, in a genuine token) and its length, mixed with
//!   a secret derived from the key ring. A hit still needs the whole token to be equal,
//!   compared in constant time, so two tokens with one tag cost a miss (a full check),
//!   never a false accept. Only tokens whose signature verified are ever inserted, and
//!   their tails are HMAC output, so nobody can crowd one slot: a collision between two
//!   genuine passes only costs one of them another HMAC. That is why the tag is a few
//!   multiplications and not a cryptographic hash: on the admitted path, hashing the
//!   token was most of what a hit cost.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use wr_pass::{Claims, KeyRing, Rejection, TokenKind, Validity};

use crate::words::{key_pair, le_u64};

/// Most entries per generation.
pub const GENERATION: usize = 1_024;

/// Bytes at the end of a token that its tag covers (a MAC in base64 is 43).
pub const TAG_BYTES: usize = 16;

/// The tables' hasher: the key already is a well-mixed tag, so it is used as it is.
#[derive(Default)]
struct TagHasher(u64);

impl Hasher for TagHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the key is a `u64`); this keeps the trait whole.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, tag: u64) {
        self.0 = tag;
    }
}

/// One verified token, the claims its signature covers, and what the caller derived
/// from its visitor id when it was verified.
struct Entry<D> {
    token: Box<[u8]>,
    claims: Claims,
    derived: D,
}

/// What a pass that admits gives the caller.
#[derive(Debug, PartialEq, Eq)]
pub struct Admitted<D = u64> {
    /// The visitor id of the pass.
    pub visitor: String,
    /// What the caller's `derive` made of the visitor id, the first time this worker
    /// verified this token (the visitor's rate-limit fingerprint: hashing the id on
    /// every request was a fair part of what an admitted request cost).
    pub derived: D,
    /// When the pass was issued, unix seconds.
    pub issued_at: u64,
}

type Table<D> = HashMap<u64, Entry<D>, BuildHasherDefault<TagHasher>>;

/// Verified passes of one worker: token bytes → the claims its signature covers, and
/// what the caller derived (`D`) from the visitor id the first time.
pub struct PassCache<D = u64> {
    tag_keys: (u64, u64),
    current: Table<D>,
    old: Table<D>,
}

impl<D: Copy + Default> PassCache<D> {
    /// An empty cache whose tags are keyed by `hash_key` (derive it from the key ring).
    pub fn new(hash_key: [u8; 32]) -> PassCache<D> {
        let table = || Table::with_capacity_and_hasher(GENERATION, Default::default());
        PassCache {
            tag_keys: key_pair(&hash_key),
            current: table(),
            old: table(),
        }
    }

    /// Checks the pass `token` for `event` as [`KeyRing::verify`] does, with the HMAC
    /// only the first time this token is seen (a token whose signature verified is
    /// remembered, whatever its claims say now); the visitor id if it admits, with
    /// `derive` of it. `derive` runs once per token and must depend on the visitor id
    /// alone: later hits return what it gave then.
    pub fn verify(
        &mut self,
        keys: &KeyRing,
        token: &[u8],
        validity: Validity,
        event: &str,
        derive: impl FnOnce(&str) -> D,
    ) -> Result<Admitted<D>, Rejection> {
        let tag = self.tag(token);
        if let Some(entry) = self.get_tagged(tag, token) {
            validity.check(&entry.claims, Some(event))?;
            return Ok(entry.admitted());
        }
        let claims = keys.verify_signature(TokenKind::Pass, token)?;
        let checked = validity.check(&claims, Some(event));
        let derived = derive(&claims.visitor);
        let entry = Entry {
            token: token.into(),
            claims,
            derived,
        };
        let admitted = checked.map(|()| entry.admitted());
        self.insert_tagged(tag, entry);
        admitted
    }

    /// The claims of `token` if its signature was verified before.
    pub fn get(&mut self, token: &[u8]) -> Option<&Claims> {
        let entry = self.get_tagged(self.tag(token), token)?;
        Some(&entry.claims)
    }

    /// Remembers that `token`'s signature verified, with its claims (and nothing
    /// derived: `D::default()`).
    pub fn insert(&mut self, token: Vec<u8>, claims: Claims) {
        let tag = self.tag(&token);
        let token = token.into_boxed_slice();
        self.insert_tagged(
            tag,
            Entry {
                token,
                claims,
                derived: D::default(),
            },
        );
    }

    /// Entries held (both generations).
    pub fn len(&self) -> usize {
        self.current.len() + self.old.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn tag(&self, token: &[u8]) -> u64 {
        let tail = &token[token.len().saturating_sub(TAG_BYTES)..];
        let (low, high) = tail.split_at(tail.len().min(8));
        let mix = |x: u64| {
            let x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            x ^ (x >> 29)
        };
        let h = mix(le_u64(low) ^ self.tag_keys.0);
        mix(h ^ le_u64(high) ^ self.tag_keys.1 ^ token.len() as u64)
    }

    fn get_tagged(&mut self, tag: u64, token: &[u8]) -> Option<&Entry<D>> {
        let holds = |table: &Table<D>| table.get(&tag).map(|e| same_bytes(&e.token, token));
        match holds(&self.current) {
            Some(true) => return self.current.get(&tag),
            Some(false) => return None,
            None => {}
        }
        if holds(&self.old) != Some(true) {
            return None;
        }
        // In use again: move it forward, so that the next turnover keeps it.
        let entry = self.old.remove(&tag)?;
        self.insert_tagged(tag, entry);
        self.current.get(&tag)
    }

    fn insert_tagged(&mut self, tag: u64, entry: Entry<D>) {
        if self.current.len() >= GENERATION && !self.current.contains_key(&tag) {
            // Turnover: the old generation goes, its table is reused for the new one.
            std::mem::swap(&mut self.current, &mut self.old);
            self.current.clear();
        }
        self.current.insert(tag, entry);
    }
}

impl<D: Copy> Entry<D> {
    fn admitted(&self) -> Admitted<D> {
        Admitted {
            visitor: self.claims.visitor.clone(),
            derived: self.derived,
            issued_at: self.claims.issued_at,
        }
    }
}

/// True if `a` and `b` are the same bytes, in time that depends only on their lengths
/// (which are public), eight bytes at a time.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut wa, mut wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut differ = 0u64;
    for (x, y) in (&mut wa).zip(&mut wb) {
        differ |= le_u64(x) ^ le_u64(y);
    }
    for (x, y) in wa.remainder().iter().zip(wb.remainder()) {
        differ |= u64::from(x ^ y);
    }
    differ == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(i: u64) -> Claims {
        Claims::new("concert", &format!("v{i}"), 0, 600)
    }

    #[test]
    fn only_the_exact_token_hits() {
        let mut cache: PassCache = PassCache::new([7; 32]);
        cache.insert(b"p1.k1.claims.mac".to_vec(), claims(1));
        assert!(cache.get(b"p1.k1.claims.mac").is_some());
        assert!(
            cache.get(b"p1.k1.claims.maC").is_none(),
            "another MAC misses"
        );
        assert!(cache.get(b"p1.k1.claims.ma").is_none());
    }

    #[test]
    fn a_token_with_a_genuine_tail_but_other_claims_misses() {
        let mut cache: PassCache = PassCache::new([7; 32]);
        let genuine = b"p1.k1.claims-of-visitor-1.0123456789abcdefghij".to_vec();
        let mut forged = genuine.clone();
        forged[6..14].copy_from_slice(b"CLAIMS-O");
        assert_eq!(
            cache.tag(&genuine),
            cache.tag(&forged),
            "same tail: same tag"
        );
        cache.insert(genuine.clone(), claims(1));
        assert!(cache.get(&forged).is_none(), "the tag alone must not hit");
        assert!(cache.get(&genuine).is_some());
    }

    #[test]
    fn what_is_derived_from_the_visitor_is_derived_once_per_token() {
        let keys = KeyRing::from_json(crate::config::tests::KEYS).unwrap();
        let claims = Claims::new("concert", "vis-1", 1_000, 2_000);
        let token = keys.mint(TokenKind::Pass, &claims).unwrap();
        let validity = Validity::at(1_500, 0);
        let mut cache: PassCache = PassCache::new([7; 32]);
        let verify = |cache: &mut PassCache, derive: &dyn Fn(&str) -> u64| {
            cache.verify(&keys, token.as_bytes(), validity, "concert", derive)
        };
        let first = verify(&mut cache, &|visitor| visitor.len() as u64).unwrap();
        assert_eq!(first.derived, 5);
        let hit = verify(&mut cache, &|_| panic!("derived again on a hit")).unwrap();
        assert_eq!(hit, first);
    }

    #[test]
    fn same_bytes_is_equality() {
        for (a, b) in [
            (&b""[..], &b""[..]),
            (b"p1.k1.abcdefgh", b"p1.k1.abcdefgh"),
            (b"p1.k1.abcdefgh", b"p1.k1.abcdefgX"),
            (b"X1.k1.abcdefgh", b"p1.k1.abcdefgh"),
            (b"p1.k1.abcdefgh", b"p1.k1.abcdefg"),
        ] {
            assert_eq!(same_bytes(a, b), a == b, "{a:?} {b:?}");
        }
    }

    #[test]
    fn a_flood_of_distinct_passes_stays_bounded_and_keeps_a_pass_in_use() {
        let mut cache: PassCache = PassCache::new([7; 32]);
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
