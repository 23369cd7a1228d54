//! The wait estimate shown to a visitor, and how often to poll.
//!
//! Seed design: the observed admission rate over 1, 5 and 15 minutes, weighted
//! 50 / 30 / 20 %; ETA = position ÷ weighted rate × 1.1; with no history, the configured
//! rate. Before the event opens, the time until it opens is added (nobody is admitted
//! before). One change, found by measuring: a window is divided by the time it actually
//! covers (since the first admission), not by its nominal length; the seed's version
//! underestimates the rate tenfold in the first minutes of a sale. And the configured
//! rate is blended in as a few seconds' worth of observation during the first half
//! minute, so that the very first admissions do not swing the estimate. Confidence: 1.0
//! with ≥ 30 admissions in 15 min, 0.8 with ≥ 10 in 5 min, 0.6 with ≥ 3 in 1 min, else
//! 0.2, and 0.2 while admission is paused. Its accuracy is measured, not assumed.

/// Seconds of observation the configured rate is worth before admissions are seen…
const PRIOR_SECS: f64 = 5.0;
/// …fading to nothing over this many seconds of real observation.
const PRIOR_FADE_SECS: f64 = 30.0;

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
    /// Longest poll interval the event allows (a third of its abandon timeout and of
    /// its claim window), ms.
    pub poll_cap_ms: u64,
    /// Seconds since the first admission: a window longer than that is measured over
    /// the time it actually covers, not over its nominal length.
    pub observing_secs: f64,
    /// Seconds until the event opens (0 once it is open): nobody is admitted before,
    /// so a wait starts with them.
    pub opens_in_secs: f64,
    /// Admission is paused by the operator: nobody knows for how long, so the estimate
    /// (made as if it resumed now) gets the lowest confidence.
    pub paused: bool,
}

impl Observed {
    /// The weighted observed rate per second (0 with no history).
    pub fn weighted_rate(&self) -> f64 {
        let covered = |window: f64| window.min(self.observing_secs);
        // The configured rate counts as a few seconds of observation at the start (one
        // admission in the first 100 ms says little), fading out over PRIOR_FADE_SECS.
        let prior = PRIOR_SECS * (1.0 - (self.observing_secs / PRIOR_FADE_SECS).min(1.0));
        let rate = |n: u64, window: f64| {
            let span = covered(window) + prior;
            if span <= 0.0 {
                return 0.0;
            }
            (n as f64 + self.configured_rate * prior) / span
        };
        0.5 * rate(self.last_1m, 60.0)
            + 0.3 * rate(self.last_5m, 300.0)
            + 0.2 * rate(self.last_15m, 900.0)
    }
}

/// Seconds until a visitor at `position` (1 = next) is admitted, and the confidence.
/// Before the event opens, the time until it opens comes first; while admission is
/// paused, the confidence is the lowest.
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
        let wait = observed.opens_in_secs.max(0.0) + position as f64 / rate * 1.1;
        ((wait - 1e-6).ceil().max(0.0) as u64).min(MAX_ETA_SECS)
    } else {
        MAX_ETA_SECS
    };
    let confidence = if observed.paused {
        0.2
    } else if observed.last_15m >= 30 {
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

/// When to poll next: about a third of the remaining wait, between 1 s and 15 s, with
/// ±20 % jitter (`jitter` in 0..1) so that a crowd does not poll in lockstep, and never
/// beyond `cap_ms` (so that following the advice never counts as abandoning).
///
/// The cap is applied before the jitter, not after: clipping a jittered value sends
/// everyone whose wait is long to the cap itself, and a crowd that joined together then
/// polls together (seen as a wave of 1,800 polls in one second, ten seconds after a
/// 2,000-visitor surge, when the claim window capped the advice at 10 s).
///
/// Why a third: the polls close in on the expected admission geometrically (a 27 s wait
/// is polled at about 27, 18, 12, 8, 5, 4, 2 and then every second), so a visitor learns of
/// their admission within a second of it unless the estimate was three times too long,
/// while a crowd sends half the polls that a tenth of the wait would cost — and polls are
/// most of what a waiting room serves.
pub fn poll_after_ms(eta_secs: u64, jitter: f64, cap_ms: u64) -> u64 {
    const SPREAD: f64 = 0.2;
    let highest = (cap_ms as f64 / (1.0 + SPREAD)).min(15_000.0);
    let base = ((eta_secs.saturating_mul(1_000) / 3) as f64)
        .max(1_000.0)
        .min(highest);
    let jittered = (base * (1.0 - SPREAD + 2.0 * SPREAD * jitter.clamp(0.0, 1.0))) as u64;
    jittered.min(cap_ms.max(500))
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
    fn before_the_opening_the_wait_starts_with_it() {
        // Opens in an hour, 10/s configured: the 100th in line waits the hour and 11 s.
        let o = Observed {
            configured_rate: 10.0,
            opens_in_secs: 3600.0,
            ..Observed::default()
        };
        assert_eq!(estimate(100, &o), (3611, 0.2));
        let later = Observed {
            opens_in_secs: 0.25,
            ..o
        };
        assert_eq!(estimate(100, &later), (12, 0.2));
        let far = Observed {
            opens_in_secs: 30.0 * 24.0 * 3600.0,
            ..o
        };
        assert_eq!(estimate(1, &far).0, MAX_ETA_SECS);
    }

    #[test]
    fn steady_state_uses_the_weighted_rate() {
        // 10/s sustained for 15 minutes.
        let o = Observed {
            last_1m: 600,
            last_5m: 3000,
            last_15m: 9000,
            configured_rate: 50.0,
            observing_secs: 3600.0,
            ..Observed::default()
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
                    observing_secs: 3600.0,
                    ..Observed::default()
                },
            )
            .1
        };
        assert_eq!(c(0, 0, 30), 1.0);
        assert_eq!(c(0, 10, 29), 0.8);
        assert_eq!(c(3, 9, 9), 0.6);
        assert_eq!(c(2, 2, 2), 0.2);
        // However long the history, a pause makes the estimate a guess.
        let paused = Observed {
            last_15m: 9000,
            configured_rate: 10.0,
            observing_secs: 3600.0,
            paused: true,
            ..Observed::default()
        };
        assert_eq!(estimate(1, &paused).1, 0.2);
    }

    #[test]
    fn early_in_a_sale_windows_cover_only_the_time_observed() {
        // 20/s for the first 10 s: every window holds 200 admissions.
        let o = Observed {
            last_1m: 200,
            last_5m: 200,
            last_15m: 200,
            observing_secs: 10.0,
            configured_rate: 20.0,
            ..Observed::default()
        };
        assert!((o.weighted_rate() - 20.0).abs() < 1e-9);
    }

    #[test]
    fn polling_spreads_out_and_stays_bounded() {
        let no_cap = u64::MAX;
        assert_eq!(poll_after_ms(0, 0.5, no_cap), 1_000);
        assert_eq!(poll_after_ms(2, 0.5, no_cap), 1_000);
        assert_eq!(poll_after_ms(15, 0.5, no_cap), 5_000);
        assert_eq!(poll_after_ms(100_000, 0.5, no_cap), 15_000);
        assert_eq!(poll_after_ms(15, 0.0, no_cap), 4_000);
        assert_eq!(poll_after_ms(15, 1.0, no_cap), 6_000);
        assert_eq!(poll_after_ms(100_000, 0.5, 1_666), 1_388);
    }

    #[test]
    fn a_capped_crowd_still_polls_spread_out() {
        // Long waits, a 10 s cap: the advice spans the jitter below the cap, not the cap.
        let cap = 10_000;
        let earliest = poll_after_ms(3_000, 0.0, cap);
        let latest = poll_after_ms(3_000, 1.0, cap);
        assert!(latest <= cap, "{latest}");
        assert!(latest - earliest >= 3_000, "{earliest}..{latest}");
    }
}
