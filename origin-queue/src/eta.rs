//! The wait estimate shown to a visitor, and how often to poll.
//!
//! Seed design: the observed admission rate over 1, 5 and 15 minutes, weighted
//! 50 / 30 / 20 %; ETA = position ÷ weighted rate × 1.1; with no history, the configured
//! rate. Confidence: 1.0 with ≥ 30 admissions in 15 min, 0.8 with ≥ 10 in 5 min, 0.6
//! with ≥ 3 in 1 min, else 0.2. Its accuracy is measured, not assumed.

/// Longest wait ever shown (a week).
pub const MAX_ETA_SECS: u64 = 7 * 24 * 3600;

/// Admissions counted in each window, and the configured rate for the cold start.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Observed {
    /// Admissions in the last minute.
    pub last_1m: u64,
    /// Admissions in the last 5 minutes.
    pub last_5m: u64,
    /// Admissions in the last 15 minutes.
    pub last_15m: u64,
    /// The event's configured admission rate (per second).
    pub configured_rate: f64,
}

impl Observed {
    /// The weighted observed rate per second (0 with no history).
    pub fn weighted_rate(&self) -> f64 {
        0.5 * self.last_1m as f64 / 60.0
            + 0.3 * self.last_5m as f64 / 300.0
            + 0.2 * self.last_15m as f64 / 900.0
    }
}

/// Seconds until a visitor at `position` (1 = next) is admitted, and the confidence.
pub fn estimate(position: u64, observed: &Observed) -> (u64, f64) {
    let observed_rate = observed.weighted_rate();
    let rate = if observed_rate > 0.0 {
        observed_rate
    } else {
        observed.configured_rate
    };
    // The epsilon keeps float noise (110.000001) from adding a whole second; no wait
    // is shown as longer than MAX_ETA_SECS.
    let eta = if rate > 0.0 {
        ((position as f64 / rate * 1.1 - 1e-6).ceil().max(0.0) as u64).min(MAX_ETA_SECS)
    } else {
        MAX_ETA_SECS
    };
    let confidence = if observed.last_15m >= 30 {
        1.0
    } else if observed.last_5m >= 10 {
        0.8
    } else if observed.last_1m >= 3 {
        0.6
    } else {
        0.2
    };
    (eta, confidence)
}

/// When to poll next: about a tenth of the remaining wait, between 1 s and 15 s, with
/// ±20 % jitter (`jitter` in 0..1) so that a crowd does not poll in lockstep.
pub fn poll_after_ms(eta_secs: u64, jitter: f64) -> u64 {
    let base = (eta_secs.saturating_mul(100)).clamp(1_000, 15_000) as f64;
    (base * (0.8 + 0.4 * jitter.clamp(0.0, 1.0))) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_start_uses_the_configured_rate() {
        let o = Observed {
            configured_rate: 10.0,
            ..Observed::default()
        };
        assert_eq!(estimate(100, &o), (11, 0.2));
    }

    #[test]
    fn steady_state_uses_the_weighted_rate() {
        // 10/s sustained for 15 minutes.
        let o = Observed {
            last_1m: 600,
            last_5m: 3000,
            last_15m: 9000,
            configured_rate: 50.0,
        };
        assert!((o.weighted_rate() - 10.0).abs() < 1e-9);
        assert_eq!(estimate(1000, &o), (110, 1.0));
    }

    #[test]
    fn confidence_steps() {
        let c = |n1, n5, n15| {
            estimate(
                1,
                &Observed {
                    last_1m: n1,
                    last_5m: n5,
                    last_15m: n15,
                    configured_rate: 1.0,
                },
            )
            .1
        };
        assert_eq!(c(0, 0, 30), 1.0);
        assert_eq!(c(0, 10, 29), 0.8);
        assert_eq!(c(3, 9, 9), 0.6);
        assert_eq!(c(2, 2, 2), 0.2);
    }

    #[test]
    fn polling_spreads_out_and_stays_bounded() {
        assert_eq!(poll_after_ms(0, 0.5), 1_000);
        assert_eq!(poll_after_ms(50, 0.5), 5_000);
        assert_eq!(poll_after_ms(100_000, 0.5), 15_000);
        assert_eq!(poll_after_ms(50, 0.0), 4_000);
        assert_eq!(poll_after_ms(50, 1.0), 6_000);
    }
}
