//! The wait estimate shown to a visitor and its range (how often to poll:
//! `poll_advice`).
//!
//! The estimate forecasts what governs admission from now on instead of only
//! extrapolating the past (measured against a sale with a rate change and walk-aways,
//! extrapolation missed by 16–30 %):
//!
//! * **The rate.** While the token bucket limits admission (a long line), the future
//!   rate *is* the configured rate: an operator's change counts in the very next
//!   estimate. While `max_active` limits it, places free only as sessions end. Every
//!   admission step with a line records when: places free now, and sessions ending in
//!   each tenth of a session length; the later of that schedule and the bucket is the
//!   forecast (the two take turns limiting single steps while sessions end in
//!   waves). Each freed place is granted again at once, claimed about 0.6 s later, and
//!   frees again a session after that (`max_active ÷ (session_seconds + 0.6)` a
//!   second when no step has recorded a schedule). (The observed 1/5/15-minute rate
//!   was tried first: in a short sale its windows still hold the admissions of the
//!   phase before, and it missed by 2–4×.) Before the first admission step, and while
//!   paused, scheduled or admitting everyone, the configured rate. Before the opening,
//!   the time until it comes first.
//! * **Walk-aways ahead.** The line drains by admissions and by visitors who stop
//!   polling and are swept, 1–1.5 abandon timeouts after their last poll. The sweep's
//!   walk over the line also counts those silent for half an abandon timeout or more
//!   (a visitor polling as told never is): they will leave without an admission. The
//!   share of them ahead of a visitor is taken as the visitor's share of the line;
//!   everyone else ahead needs an admission. Walk-aways too recent to be silent yet
//!   are unknowable: they widen the range. (The share of past departures that were
//!   walk-aways is no forecast: a crowd that stopped polling together is swept
//!   together, and after that sweep nobody ahead is left to walk.)
//! * **An honest range, not a fudge factor.** The central estimate has no margin. Its
//!   error model (the binomial spread of walk-aways ahead, the uncertainty of the walk-away
//!   share, the rate's uncertainty — small when the bucket binds, large when sessions
//!   do — and the admission step's granularity) gives a standard deviation; the range is
//!   the central estimate ± 1.645 of them (nominally 90 % coverage), and the confidence
//!   is the model's probability that the actual wait falls within ±20 % of the
//!   estimate. Both are checked against actual waits: `wr_eta_relative_error` and
//!   `wr_eta_range_total{result}`.
//! * While paused, the estimate assumes admission resumes now, the range has no upper
//!   end and the confidence is at most 0.2.
use crate::event::{Binding, Observed, SlotEnds};

/// Seconds of observation the configured rate is worth before admissions are seen…
const PRIOR_SECS: f64 = 5.0;
/// …fading to nothing over this many seconds of real observation.
const PRIOR_FADE_SECS: f64 = 30.0;
/// Two-sided 90 % quantile of the normal distribution.
const Z90: f64 = 1.645;
/// The standard deviation, in seconds, that the admission step's granularity and
/// scheduling add to any wait.
const GRAIN_SECS: f64 = 0.15;
/// The standard deviation, as a share of the recent joiners ahead, of walk-aways not
/// yet seen by any sweep (those who joined less than an abandon timeout ago).
const UNSEEN_WALK_SD: f64 = 0.05;
/// Relative uncertainty of the configured rate as a forecast while the bucket binds.
const BUCKET_RATE_SD: f64 = 0.02;
/// Relative uncertainty of the rate places free at while sessions bind.
const SESSION_RATE_SD: f64 = 0.15;
/// About how long an admitted visitor takes to claim the place: near the head of the
/// line visitors poll every 0.8–1.2 s (`poll_advice`), so the grant is seen about half
/// an interval after it is made. (1 s was assumed first: the sessions phase of
/// `eta-sim` came out +2.6 % long.)
const CLAIM_LAG_SECS: f64 = 0.6;
/// Relative uncertainty of the schedule of freed places (claim lags, the tenths).
const SCHEDULE_SD: f64 = 0.04;

impl SlotEnds {
    /// `"free,e0,…,e9"`, or empty for none; `None` if malformed.
    pub fn parse(text: &str) -> Option<SlotEnds> {
        if text.is_empty() {
            return Some(SlotEnds(None));
        }
        let mut ends = [0i64; 11];
        let mut parts = text.split(',');
        for end in &mut ends {
            *end = parts.next()?.trim().parse().ok()?;
        }
        parts.next().is_none().then_some(SlotEnds(Some(ends)))
    }

    /// Seconds until `needed` admissions, each place reused as soon as it frees and
    /// freeing again a session (plus the claim lag) later; `None` without a schedule.
    fn time_for(&self, needed: f64, session_secs: f64) -> Option<f64> {
        let ends = self.0?;
        if session_secs <= 0.0 {
            return None;
        }
        let tenth = session_secs / 10.0;
        // The places that cycle, by when each is first free: those free now, then one per
        // ending session once the sessions over `max_active` have ended.
        let mut excess = (-ends[0]).max(0) as f64;
        // (when the first of them frees, over how long they free, how many)
        let mut first: Vec<(f64, f64, f64)> = vec![(0.0, 0.0, ends[0].max(0) as f64)];
        for (i, count) in ends[1..].iter().enumerate() {
            let count = (*count).max(0) as f64;
            let usable = (count - excess).max(0.0);
            excess = (excess - count).max(0.0);
            if usable > 0.0 {
                // Spread evenly over the tenth; the sessions over the cap end first.
                let skipped = tenth * (count - usable) / count;
                first.push((tenth * i as f64 + skipped, tenth - skipped, usable));
            }
        }
        let places: f64 = first.iter().map(|(_, _, n)| n).sum();
        if places <= 0.0 {
            return None;
        }
        let period = session_secs + CLAIM_LAG_SECS;
        let cycles = ((needed / places).ceil() - 1.0).max(0.0);
        let mut rest = needed - cycles * places;
        for (at, span, count) in &first {
            if rest <= *count {
                return Some(cycles * period + at + span * rest / count);
            }
            rest -= count;
        }
        Some(cycles * period + session_secs)
    }
}

/// Longest wait ever shown (a week).
pub const MAX_ETA_SECS: u64 = 7 * 24 * 3600;

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

    /// The admission rate to expect from now on, and its relative uncertainty.
    fn forecast_rate(&self) -> (f64, f64) {
        let configured = self.configured_rate.max(0.0);
        match self.binding {
            Binding::Slots => {
                let freed = self.max_active as f64 / (self.session_secs + CLAIM_LAG_SECS);
                (freed.min(configured), SESSION_RATE_SD)
            }
            Binding::Unknown => (configured, 0.1),
            Binding::Rate | Binding::Line | Binding::NotAdmitting => (configured, BUCKET_RATE_SD),
        }
    }

    /// Walk-aways expected among the `ahead` visitors ahead, and the variance of that.
    /// Those who joined too recently to have been seen silent are the unknown part:
    /// they are the back of the line, so for a visitor with `behind` others after
    /// them, those of them ahead are the recent joins less those behind and less the
    /// visitor.
    fn walkers_ahead(&self, ahead: f64) -> (f64, f64) {
        let share = if self.waiting > 0 {
            (ahead / self.waiting as f64).min(1.0)
        } else {
            1.0
        };
        let expected = (self.silent as f64 * share).min(ahead);
        let behind = (self.waiting as f64 - ahead - 1.0).max(0.0);
        let recent_ahead = (self.recent_joins as f64 - behind - 1.0).clamp(0.0, ahead);
        (expected, expected + (UNSEEN_WALK_SD * recent_ahead).powi(2))
    }
}

/// A visitor's estimated wait.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// The central estimate, ms.
    pub eta_ms: u64,
    /// The low end of the range that should hold the actual wait nine times in ten, ms.
    pub low_ms: u64,
    /// Its high end; `None` while admission is paused (no upper end is known).
    pub high_ms: Option<u64>,
    /// The model's probability that the actual wait is within ±20 % of `eta_ms`.
    pub confidence: f64,
}

impl Estimate {
    /// The central estimate in whole seconds, rounded up (the API's `eta_seconds`).
    pub fn eta_secs(&self) -> u64 {
        self.eta_ms.div_ceil(1000)
    }
}

/// The wait of a visitor at `position` (1 = next).
pub fn estimate(position: u64, observed: &Observed) -> Estimate {
    let max_ms = MAX_ETA_SECS * 1000;
    let (rate, rate_sd) = observed.forecast_rate();
    if rate <= 0.0 {
        return Estimate {
            eta_ms: max_ms,
            low_ms: max_ms,
            high_ms: None,
            confidence: 0.0,
        };
    }
    let ahead = position.saturating_sub(1) as f64;
    let (walkers, needed_var) = observed.walkers_ahead(ahead);
    // Admissions until this visitor's own, included.
    let needed = ahead - walkers + 1.0;
    let opens_in = observed.opens_in_secs.max(0.0);
    // When the admission step recorded when places free, the later of that schedule and
    // the bucket (the two take turns limiting single steps while sessions end in waves).
    let configured = observed.configured_rate.max(f64::MIN_POSITIVE);
    let (admitting, rate, rate_sd) =
        match observed.slot_ends.time_for(needed, observed.session_secs) {
            Some(secs) if secs > needed / configured => (secs, needed / secs, SCHEDULE_SD),
            Some(_) => (needed / configured, configured, BUCKET_RATE_SD),
            None => (needed / rate, rate, rate_sd),
        };
    let eta = opens_in + admitting;
    let sd =
        (needed_var / rate.powi(2) + (rate_sd * admitting).powi(2) + GRAIN_SECS.powi(2)).sqrt();
    let ms = |secs: f64| ((secs.max(0.0) * 1000.0).round() as u64).min(max_ms);
    let mut confidence = erf(0.2 * eta / (sd * std::f64::consts::SQRT_2));
    if observed.paused {
        confidence = confidence.min(0.2);
    }
    Estimate {
        eta_ms: ms(eta),
        low_ms: ms((eta - Z90 * sd).max(opens_in)),
        high_ms: (!observed.paused).then(|| ms(eta + Z90 * sd)),
        confidence: (confidence * 100.0).round() / 100.0,
    }
}

/// The error function (Abramowitz and Stegun 7.1.26, error below 1.5e-7).
fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    sign * (1.0 - poly * (-x * x).exp())
}

#[cfg(test)]
mod tests;
