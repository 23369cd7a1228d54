//! The ETA a visitor was shown when joining, carried in its signed ticket.
//!
//! The ETA-error metric compares, at admission, the wait a visitor was promised with
//! the wait it had. Keeping that promise in Redis would cost a hash field per waiting
//! visitor (about 120 bytes at 300,000 visitors: a third of the memory); the ticket the
//! visitor already carries is signed, so it holds the promise instead, as one claim
//! extension: join time and ETA, both in milliseconds, 8 bytes each, big-endian.

use wr_pass::{Claims, Extension};

/// Extension tag of the record in a ticket's claims.
pub const TAG: u8 = 1;

/// When a visitor joined and the wait it was shown then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EtaRecord {
    /// Join time, unix milliseconds.
    pub joined_ms: u64,
    /// The ETA shown at join, milliseconds.
    pub eta_ms: u64,
}

impl EtaRecord {
    /// The record as a claim extension.
    pub fn to_extension(self) -> Extension {
        let mut value = Vec::with_capacity(16);
        value.extend_from_slice(&self.joined_ms.to_be_bytes());
        value.extend_from_slice(&self.eta_ms.to_be_bytes());
        Extension { tag: TAG, value }
    }

    /// The record in `claims`, if there is a well-formed one.
    pub fn from_claims(claims: &Claims) -> Option<EtaRecord> {
        let ext = claims.extensions.iter().find(|e| e.tag == TAG)?;
        let (joined, eta) = ext.value.split_first_chunk::<8>()?;
        let eta: &[u8; 8] = eta.try_into().ok()?;
        Some(EtaRecord {
            joined_ms: u64::from_be_bytes(*joined),
            eta_ms: u64::from_be_bytes(*eta),
        })
    }

    /// |actual − promised| / actual for a grant at `granted_ms`; `None` when the wait
    /// was zero (nothing to compare).
    pub fn relative_error(self, granted_ms: u64) -> Option<f64> {
        let actual = granted_ms.saturating_sub(self.joined_ms) as f64;
        (actual > 0.0).then(|| (actual - self.eta_ms as f64).abs() / actual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_claims_and_ignores_malformed_values() {
        let record = EtaRecord {
            joined_ms: 1_700_000_000_123,
            eta_ms: 42_000,
        };
        let mut claims = Claims::new("concert", "v1", 1, 2);
        assert_eq!(EtaRecord::from_claims(&claims), None);
        claims.extensions.push(record.to_extension());
        assert_eq!(EtaRecord::from_claims(&claims), Some(record));
        claims.extensions[0].value.pop();
        assert_eq!(EtaRecord::from_claims(&claims), None);
    }

    #[test]
    fn relative_error_is_against_the_actual_wait() {
        let record = EtaRecord {
            joined_ms: 1_000,
            eta_ms: 10_000,
        };
        assert_eq!(record.relative_error(9_000), Some(0.25));
        assert_eq!(record.relative_error(1_000), None);
    }
}
