//! When the time claims of a token are acceptable: the clock-skew leeway, the longest
//! lifetime and an event's cut.

use crate::claims::Claims;
use crate::token::Rejection;

/// When the time claims of a token are acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// Unix seconds now.
    pub now: u64,
    /// Clock skew tolerated either way, seconds.
    pub leeway_secs: u64,
    /// Longest accepted lifetime (expiry − issue time), seconds; `u64::MAX` for none.
    pub max_lifetime_secs: u64,
    /// Unix seconds before which no token was validly issued (the event's cut): a token
    /// issued earlier is [`Rejection::Revoked`]. 0 for none.
    pub not_before: u64,
}

impl Validity {
    /// At `now`, with `leeway_secs` of clock skew and no bound on the lifetime.
    pub fn at(now: u64, leeway_secs: u64) -> Validity {
        Validity {
            now,
            leeway_secs,
            max_lifetime_secs: u64::MAX,
            not_before: 0,
        }
    }

    /// The same, refusing tokens issued before `not_before` (unix seconds; 0: none).
    pub fn with_not_before(self, not_before: u64) -> Validity {
        Validity { not_before, ..self }
    }

    /// The same, refusing tokens valid for longer than `max_lifetime_secs`.
    pub fn with_max_lifetime(self, max_lifetime_secs: u64) -> Validity {
        Validity {
            max_lifetime_secs,
            ..self
        }
    }

    /// Checks the claims of a token whose signature is known to be good: lifetime,
    /// validity window, the cut and — if given — the event. The cut has no leeway: it
    /// compares two times of the same issuer's clock.
    pub fn check(&self, claims: &Claims, expected_event: Option<&str>) -> Result<(), Rejection> {
        // Claims decode only with expiry after issue; saturating all the same.
        if claims.expires_at.saturating_sub(claims.issued_at) > self.max_lifetime_secs {
            return Err(Rejection::LifetimeTooLong);
        }
        if self.now.saturating_add(self.leeway_secs) < claims.issued_at {
            return Err(Rejection::NotYetValid);
        }
        if self.now >= claims.expires_at.saturating_add(self.leeway_secs) {
            return Err(Rejection::Expired);
        }
        if expected_event.is_some_and(|event| event != claims.event) {
            return Err(Rejection::WrongEvent);
        }
        if claims.issued_at < self.not_before {
            return Err(Rejection::Revoked);
        }
        Ok(())
    }
}
