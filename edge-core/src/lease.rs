//! Token leases: the tokens one worker has drawn from a shared bucket and not yet used.
//!
//! Why: a shared-data get and compare-and-swap on every request was the largest cost of
//! an admitted request. A worker that draws up to `B` tokens at once from a client's
//! shared bucket spends the next `B - 1` of that client's requests from its own memory,
//! with no host call.
//!
//! Only a client that comes back gets a lease: a worker's first request of a client it
//! holds no entry for draws one token, and records the client with nothing to spend; the
//! next request draws the full lease. So a flood of clients that each send one request
//! (a flood of distinct passes) costs one draw per request and strands no tokens, and
//! evicting such a client's entry has nothing to give back.
//!
//! What it costs in precision, exactly: tokens are only ever taken out of the shared
//! bucket, so the long-run rate is the configured one. But tokens held in a lease do not
//! stop the shared bucket refilling up to its burst, so in any interval a client can get
//! at most `W × (B − 1)` requests more than one exact bucket would allow (`W` workers,
//! each holding at most one lease of at most `B − 1` unused tokens per client). Leases
//! last [`LEASE_MS`]; the unused tokens of an expired or evicted lease go back to the
//! shared bucket when the worker next meets that entry, so a quiet client starts again
//! from the exact bucket, and tokens left in a lease nobody comes back to only make that
//! client stricter until its bucket refills.
//!
//! The table is direct-mapped and fixed in size: [`LEASE_ENTRIES`] entries at most, of
//! [`std::mem::size_of::<Option<Lease>>`] bytes each, per limiter and per worker.

/// How long a lease may be spent, in milliseconds.
pub const LEASE_MS: u64 = 1_000;
/// Entries per limiter and worker, at most (fewer when the limiter has fewer slots).
pub const LEASE_ENTRIES: usize = 1_024;

/// Tokens a worker holds for one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The client's fingerprint (the keyed hash that also picks its shared slot).
    pub fingerprint: u64,
    /// Whole tokens left to spend.
    pub tokens: u32,
    /// When the lease stops being spendable (unix ms).
    pub expires_ms: u64,
}

/// A fixed-size, direct-mapped table of leases.
#[derive(Debug)]
pub struct LeaseTable {
    entries: Vec<Option<Lease>>,
}

impl LeaseTable {
    /// A table of `min(slots, LEASE_ENTRIES)` entries (at least one).
    pub fn new(slots: u32) -> LeaseTable {
        let size = (slots as usize).clamp(1, LEASE_ENTRIES);
        LeaseTable {
            entries: vec![None; size],
        }
    }

    fn index(&self, fingerprint: u64) -> usize {
        // The high half: the shared slot is picked from the low bits.
        ((fingerprint >> 32) % self.entries.len() as u64) as usize
    }

    /// Spends one token of `fingerprint`'s lease, if it holds one that is unexpired.
    pub fn spend(&mut self, fingerprint: u64, now_ms: u64) -> bool {
        let at = self.index(fingerprint);
        match &mut self.entries[at] {
            Some(lease)
                if lease.fingerprint == fingerprint
                    && lease.tokens > 0
                    && now_ms < lease.expires_ms =>
            {
                lease.tokens -= 1;
                true
            }
            _ => false,
        }
    }

    /// Empties the entry `fingerprint` maps to, returning what it held (whoever's it
    /// was, spent or not): its own entry says the client has been here before, another
    /// client's unused tokens are for the caller to give back to the shared bucket.
    pub fn take_entry(&mut self, fingerprint: u64) -> Option<Lease> {
        let at = self.index(fingerprint);
        self.entries[at].take()
    }

    /// Records a newly drawn lease of `tokens` (possibly none) for `fingerprint`, from
    /// `now_ms`.
    pub fn grant(&mut self, fingerprint: u64, tokens: u32, now_ms: u64) {
        let at = self.index(fingerprint);
        self.entries[at] = Some(Lease {
            fingerprint,
            tokens,
            expires_ms: now_ms.saturating_add(LEASE_MS),
        });
    }

    /// Entries in the table.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 0x0000_0001_0000_0007;

    #[test]
    fn a_lease_is_spent_token_by_token_until_empty() {
        let mut t = LeaseTable::new(64);
        assert!(!t.spend(A, 0));
        t.grant(A, 2, 0);
        assert!(t.spend(A, 10));
        assert!(t.spend(A, 20));
        assert!(!t.spend(A, 30));
    }

    #[test]
    fn an_expired_lease_is_not_spent_but_handed_back() {
        let mut t = LeaseTable::new(64);
        t.grant(A, 5, 0);
        assert!(!t.spend(A, LEASE_MS));
        assert_eq!(t.take_entry(A).map(|l| l.tokens), Some(5));
        assert_eq!(t.take_entry(A), None);
    }

    #[test]
    fn a_spent_entry_still_records_its_client() {
        let mut t = LeaseTable::new(64);
        t.grant(A, 0, 0);
        assert!(!t.spend(A, 1));
        assert_eq!(
            t.take_entry(A).map(|l| (l.fingerprint, l.tokens)),
            Some((A, 0))
        );
    }

    #[test]
    fn another_client_on_the_same_entry_does_not_spend_it() {
        let mut t = LeaseTable::new(1);
        t.grant(A, 5, 0);
        let b = A ^ (1 << 40);
        assert!(!t.spend(b, 1));
        assert_eq!(t.take_entry(b).map(|l| l.fingerprint), Some(A));
    }

    #[test]
    fn the_table_is_bounded() {
        assert_eq!(LeaseTable::new(1).capacity(), 1);
        assert_eq!(LeaseTable::new(1 << 20).capacity(), LEASE_ENTRIES);
        assert!(std::mem::size_of::<Option<Lease>>() <= 32);
    }
}
