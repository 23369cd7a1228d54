//! The ETA a visitor was shown when joining, carried in its signed ticket.
//!
//! The ETA-error metric compares, at admission, the wait a visitor was promised with
//! the wait it had. Keeping that promise in Redis would cost a hash field per waiting
//! visitor (about 120 bytes at 300,000 visitors: a third of the memory); the ticket the
//! visitor already carries is signed, so it holds the promise instead, as one claim
//! extension: join time, ETA, and the range's low and high ends, in milliseconds, 8
//! bytes each, big-endian (a high end of `u64::MAX`: none). Records of 16 bytes (join
//! time and ETA only, written before ranges existed) are still read.

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
    /// The range shown at join (low, high), milliseconds; no high end while paused.
    pub range_ms: Option<(u64, Option<u64>)>,
}

impl EtaRecord {
    /// The record as a claim extension.
    pub fn to_extension(self) -> Extension {
        let mut value = Vec::with_capacity(32);
        value.extend_from_slice(&self.joined_ms.to_be_bytes());
        value.extend_from_slice(&self.eta_ms.to_be_bytes());
        if let Some((low, high)) = self.range_ms {
            value.extend_from_slice(&low.to_be_bytes());
            value.extend_from_slice(&high.unwrap_or(u64::MAX).to_be_bytes());
        }
        Extension { tag: TAG, value }
    }

    /// The record in `claims`, if there is a well-formed one.
    pub fn from_claims(claims: &Claims) -> Option<EtaRecord> {
        let ext = claims.extensions.iter().find(|e| e.tag == TAG)?;
        if ext.value.len() != 16 && ext.value.len() != 32 {
            return None;
        }
        let word = |i: usize| {
            let bytes: [u8; 8] = ext.value.get(8 * i..8 * i + 8)?.try_into().ok()?;
            Some(u64::from_be_bytes(bytes))
        };
        let range_ms = match (word(2), word(3)) {
            (Some(low), Some(high)) => Some((low, (high != u64::MAX).then_some(high))),
            _ => None,
        };
        Some(EtaRecord {
            joined_ms: word(0)?,
            eta_ms: word(1)?,
            range_ms,
        })
    }

    /// How the actual wait, to a grant at `granted_ms`, compares with the range shown;
    /// `None` for a record without a range.
    pub fn range_result(self, granted_ms: u64) -> Option<RangeResult> {
        let (low, high) = self.range_ms?;
        let actual = granted_ms.saturating_sub(self.joined_ms);
        Some(match high {
            _ if actual < low => RangeResult::Outside,
            None => RangeResult::Unbounded,
            Some(high) if actual <= high => RangeResult::Inside,
            Some(_) => RangeResult::Outside,
        })
    }

    /// |actual − promised| / actual for a grant at `granted_ms`; `None` when the wait
    /// was zero (nothing to compare).
    pub fn relative_error(self, granted_ms: u64) -> Option<f64> {
        let actual = granted_ms.saturating_sub(self.joined_ms) as f64;
        (actual > 0.0).then(|| (actual - self.eta_ms as f64).abs() / actual)
    }
}

/// An actual wait against the range shown at join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeResult {
    /// Inside a range with both ends.
    Inside,
    /// Outside the range (below its low end, or above its high end).
    Outside,
    /// At or above the low end of a range with no high end (shown while paused): such
    /// a range holds any long wait, so it says nothing of the range's coverage.
    Unbounded,
}

impl RangeResult {
    /// Every result, in the order `/metrics` lists them.
    pub const ALL: [RangeResult; 3] = [
        RangeResult::Inside,
        RangeResult::Outside,
        RangeResult::Unbounded,
    ];

    /// The label of `wr_eta_range_total{result}`.
    pub fn label(self) -> &'static str {
        match self {
            RangeResult::Inside => "inside",
            RangeResult::Outside => "outside",
            RangeResult::Unbounded => "unbounded",
        }
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
            range_ms: Some((38_000, Some(47_000))),
        };
        let mut claims = Claims::new("concert", "v1", 1, 2);
        assert_eq!(EtaRecord::from_claims(&claims), None);
        claims.extensions.push(record.to_extension());
        assert_eq!(EtaRecord::from_claims(&claims), Some(record));
        claims.extensions[0].value.pop();
        assert_eq!(EtaRecord::from_claims(&claims), None);
    }

    #[test]
    fn records_without_a_range_are_still_read() {
        let old = EtaRecord {
            joined_ms: 5,
            eta_ms: 42_000,
            range_ms: None,
        };
        let mut claims = Claims::new("concert", "v1", 1, 2);
        claims.extensions.push(old.to_extension());
        assert_eq!(claims.extensions[0].value.len(), 16);
        assert_eq!(EtaRecord::from_claims(&claims), Some(old));
        assert_eq!(old.range_result(40_000), None);
    }

    #[test]
    fn a_range_without_a_high_end_is_counted_apart() {
        let paused = EtaRecord {
            joined_ms: 0,
            eta_ms: 10_000,
            range_ms: Some((8_000, None)),
        };
        let mut claims = Claims::new("concert", "v1", 1, 2);
        claims.extensions.push(paused.to_extension());
        assert_eq!(EtaRecord::from_claims(&claims), Some(paused));
        assert_eq!(paused.range_result(1_000_000), Some(RangeResult::Unbounded));
        assert_eq!(paused.range_result(7_000), Some(RangeResult::Outside));
    }

    #[test]
    fn a_bounded_range_holds_waits_between_its_ends() {
        let record = EtaRecord {
            joined_ms: 1_000,
            eta_ms: 10_000,
            range_ms: Some((8_000, Some(12_000))),
        };
        assert_eq!(record.range_result(11_000), Some(RangeResult::Inside));
        assert_eq!(record.range_result(13_001), Some(RangeResult::Outside));
        assert_eq!(record.range_result(8_999), Some(RangeResult::Outside));
    }

    #[test]
    fn relative_error_is_against_the_actual_wait() {
        let record = EtaRecord {
            joined_ms: 1_000,
            eta_ms: 10_000,
            range_ms: None,
        };
        assert_eq!(record.relative_error(9_000), Some(0.25));
        assert_eq!(record.relative_error(1_000), None);
    }
}
