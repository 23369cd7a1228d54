//! The autopilot's control law: additive increase, multiplicative decrease (AIMD) of
//! the admission rate, with a dead band and spacing so that the line never visibly
//! stops and rushes.
//!
//! Every step (every [`super::PERIOD`]) it reads one [`Reading`] of the backend and:
//!
//! - **over target** (p95 above `target_p95_ms`, or the error share above
//!   `max_error_share`): multiplies the rate by [`DECREASE`], or by less the further over
//!   the p95 is (√(target / p95), never below [`DEEPEST_DECREASE`]), at most once per
//!   [`DECREASE_SPACING_MS`] (the backend needs that long to show the effect of the last
//!   cut: admitted visitors keep making requests for a while);
//! - **well within target** (p95 below [`HEADROOM`] × target, errors within bounds), the
//!   rate is what limits admission (the line is longer than the rate lets in), and the
//!   backend's load has settled since the last increase (a window holds at most
//!   [`SETTLED`] × the responses of the one before): adds [`INCREASE_SHARE`] of
//!   `max_rate`, at most once per [`INCREASE_SPACING_MS`];
//! - between the two (the dead band), or when raising the rate would change nothing
//!   (the line is short, sessions bind): holds. Raising a rate nobody uses would only
//!   store up a jump for later (the windup of a PI controller);
//! - **no fresh signal** (stale, unreachable, nonsense): falls back to the configured
//!   rate, but never above the rate in force: missing data never opens the gates wider.
//!
//! Always within `[min_rate, max_rate]`. Why AIMD: it is the law TCP uses on a shared
//! path whose capacity is unknown and changes; it needs no model of the backend, only
//! a yes/no on the target, and its decrease is fast where it matters (an overloaded
//! backend) while its increase is gentle. The constants come from the simulation
//! (`autopilot-sim`, BENCHMARKS.md), where the backend's load lags the rate by up to
//! 30 s: faster increases or closer fixed decreases made the rate swing between too much
//! and too little (the target held 46–85 % of the time); the settling check, the dead
//! band and the deeper cut far over target got it to 95 %.

use serde::Serialize;

use crate::store::AutopilotConfig;

/// The factor of a decrease.
pub const DECREASE: f64 = 0.8;
/// The deepest decrease, far over target.
pub const DEEPEST_DECREASE: f64 = 0.5;
/// The least time between two decreases, ms.
pub const DECREASE_SPACING_MS: u64 = 10_000;
/// The share of `max_rate` one increase adds.
pub const INCREASE_SHARE: f64 = 0.015;
/// The least time between an increase and the change before it, ms.
pub const INCREASE_SPACING_MS: u64 = 2_000;
/// The load counts as settled when a window holds at most this many times the
/// responses of the one before.
pub const SETTLED: f64 = 1.05;
/// The rate rises only while the p95 is below this share of the target.
pub const HEADROOM: f64 = 0.5;

/// What the backend looked like over the last window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Signal {
    /// 95th percentile of the backend's response time, ms.
    pub p95_ms: f64,
    /// Share of responses that were errors (5xx, resets, timeouts), 0–1.
    pub error_share: f64,
    /// Responses in the window.
    pub requests: u64,
}

/// One reading of the backend.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reading {
    /// A fresh window with enough responses to judge.
    Fresh(Signal),
    /// Fresh, but too few responses to judge (the backend is nearly idle).
    Thin,
    /// No fresh signal: the source is unreachable, stale or makes no sense.
    Missing,
}

/// Why the rate is what it is after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Raised: well within target, and the rate was what limited admission.
    Increase,
    /// Cut: over target.
    Decrease,
    /// Held: within the dead band, or too soon after the last change.
    Hold,
    /// Held: within target, but a higher rate would admit nobody more (short line,
    /// or the active cap binds).
    NotBinding,
    /// Held: the backend's load is still climbing from the last increase.
    Settling,
    /// Held: too few responses to judge.
    Thin,
    /// No fresh signal: fell back to the configured rate (never higher than before).
    Fallback,
}

impl Reason {
    /// The name in stats, metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Increase => "increase",
            Reason::Decrease => "decrease",
            Reason::Hold => "hold",
            Reason::NotBinding => "not_binding",
            Reason::Settling => "settling",
            Reason::Thin => "thin",
            Reason::Fallback => "fallback",
        }
    }
}

/// The law's memory between steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct State {
    /// The rate in force.
    pub rate: f64,
    /// When it last changed (ms), for the spacing.
    pub changed_ms: u64,
    /// When it was last cut (ms).
    pub decreased_ms: u64,
    /// Responses in the last fresh window (0: none yet).
    pub last_requests: u64,
}

impl State {
    /// The state an autopilot starts from: the configured rate within the bounds.
    pub fn start(config: &AutopilotConfig, configured_rate: f64) -> State {
        State {
            rate: configured_rate.clamp(config.min_rate, config.max_rate),
            changed_ms: 0,
            decreased_ms: 0,
            last_requests: 0,
        }
    }
}

/// One step of the law at `now_ms`: the new state and why. `rate_binds` is true when
/// the rate is what limits admission (the line is longer than it lets in).
pub fn step(
    config: &AutopilotConfig,
    configured_rate: f64,
    state: State,
    reading: Reading,
    rate_binds: bool,
    now_ms: u64,
) -> (State, Reason) {
    let bounded = |rate: f64| rate.clamp(config.min_rate, config.max_rate);
    let changed = |base: State, rate: f64, decreased: bool| State {
        rate,
        changed_ms: now_ms,
        decreased_ms: if decreased { now_ms } else { base.decreased_ms },
        ..base
    };
    let signal = match reading {
        Reading::Missing => {
            let rate = bounded(configured_rate.min(state.rate));
            return (changed(state, rate, rate < state.rate), Reason::Fallback);
        }
        Reading::Thin => return (state, Reason::Thin),
        Reading::Fresh(signal) => signal,
    };
    let previous_requests = state.last_requests;
    let state = State {
        last_requests: signal.requests,
        ..state
    };
    let target = f64::from(config.target_p95_ms);
    let over = signal.p95_ms > target || signal.error_share > config.max_error_share;
    if over {
        if now_ms.saturating_sub(state.decreased_ms) < DECREASE_SPACING_MS {
            return (state, Reason::Hold);
        }
        // Far over target, a deeper cut: the factor falls with the square root of how
        // far over the p95 is, down to DEEPEST_DECREASE.
        let factor = (target / signal.p95_ms)
            .sqrt()
            .clamp(DEEPEST_DECREASE, DECREASE);
        let rate = bounded(state.rate * factor);
        return (changed(state, rate, true), Reason::Decrease);
    }
    if signal.p95_ms >= HEADROOM * target {
        return (state, Reason::Hold);
    }
    if !rate_binds {
        return (state, Reason::NotBinding);
    }
    // The backend's load still climbing from the last increase: wait until it settles
    // (admitted visitors keep adding requests for a while after they are let in).
    if signal.requests as f64 > SETTLED * previous_requests as f64 {
        return (state, Reason::Settling);
    }
    if now_ms.saturating_sub(state.changed_ms) < INCREASE_SPACING_MS {
        return (state, Reason::Hold);
    }
    let rate = bounded(state.rate + INCREASE_SHARE * config.max_rate);
    (changed(state, rate, false), Reason::Increase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AutopilotConfig {
        AutopilotConfig {
            enabled: true,
            target_p95_ms: 250,
            max_error_share: 0.01,
            min_rate: 10.0,
            max_rate: 200.0,
        }
    }

    fn fresh(p95_ms: f64, error_share: f64) -> Reading {
        Reading::Fresh(Signal {
            p95_ms,
            error_share,
            requests: 1_000,
        })
    }

    fn at(rate: f64) -> State {
        State {
            rate,
            changed_ms: 0,
            decreased_ms: 0,
            last_requests: 1_000,
        }
    }

    #[test]
    fn over_target_cuts_the_rate_and_waits_before_cutting_again() {
        let (s, why) = step(&config(), 100.0, at(100.0), fresh(260.0, 0.0), true, 60_000);
        assert_eq!((s.rate, why), (100.0 * DECREASE, Reason::Decrease));
        let soon = 60_000 + DECREASE_SPACING_MS - 1;
        let (s2, why) = step(&config(), 100.0, s, fresh(260.0, 0.0), true, soon);
        assert_eq!((s2.rate, why), (s.rate, Reason::Hold));
        let later = 60_000 + DECREASE_SPACING_MS;
        let (s3, why) = step(&config(), 100.0, s2, fresh(260.0, 0.0), true, later);
        assert_eq!((s3.rate, why), (s.rate * DECREASE, Reason::Decrease));
    }

    #[test]
    fn far_over_target_the_cut_is_deeper_but_never_below_half() {
        // Four times the target: √(1/4) = 0.5.
        let (s, _) = step(
            &config(),
            100.0,
            at(100.0),
            fresh(1_000.0, 0.0),
            true,
            60_000,
        );
        assert_eq!(s.rate, 50.0);
        let (s, _) = step(
            &config(),
            100.0,
            at(100.0),
            fresh(90_000.0, 0.0),
            true,
            60_000,
        );
        assert_eq!(s.rate, 100.0 * DEEPEST_DECREASE);
        // Twice the target: √(1/2) ≈ 0.71.
        let (s, _) = step(&config(), 100.0, at(100.0), fresh(500.0, 0.0), true, 60_000);
        assert!((s.rate - 100.0 * 0.5f64.sqrt()).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn errors_alone_cut_the_rate() {
        let (s, why) = step(&config(), 100.0, at(100.0), fresh(50.0, 0.05), true, 60_000);
        assert_eq!((s.rate, why), (100.0 * DECREASE, Reason::Decrease));
    }

    #[test]
    fn well_within_target_raises_the_rate_by_a_share_of_the_maximum() {
        let (s, why) = step(&config(), 100.0, at(100.0), fresh(100.0, 0.0), true, 60_000);
        assert_eq!(
            (s.rate, why),
            (100.0 + INCREASE_SHARE * 200.0, Reason::Increase)
        );
    }

    #[test]
    fn a_load_still_climbing_holds_the_rate() {
        let climbing = Reading::Fresh(Signal {
            p95_ms: 100.0,
            error_share: 0.0,
            requests: 2_000,
        });
        let (s, why) = step(&config(), 100.0, at(100.0), climbing, true, 60_000);
        assert_eq!((s.rate, why), (100.0, Reason::Settling));
        assert_eq!(s.last_requests, 2_000);
    }

    #[test]
    fn the_dead_band_holds() {
        let (s, why) = step(&config(), 100.0, at(100.0), fresh(150.0, 0.0), true, 60_000);
        assert_eq!((s.rate, why), (100.0, Reason::Hold));
    }

    #[test]
    fn a_rate_that_limits_nothing_is_not_raised() {
        let (s, why) = step(&config(), 100.0, at(100.0), fresh(10.0, 0.0), false, 60_000);
        assert_eq!((s.rate, why), (100.0, Reason::NotBinding));
    }

    #[test]
    fn the_bounds_hold() {
        let (s, _) = step(&config(), 100.0, at(199.0), fresh(10.0, 0.0), true, 60_000);
        assert_eq!(s.rate, 200.0);
        let (s, _) = step(&config(), 100.0, at(11.0), fresh(900.0, 0.5), true, 60_000);
        assert_eq!(s.rate, 10.0);
    }

    #[test]
    fn missing_data_falls_back_to_the_configured_rate_but_never_opens_wider() {
        let (s, why) = step(&config(), 50.0, at(120.0), Reading::Missing, true, 60_000);
        assert_eq!((s.rate, why), (50.0, Reason::Fallback));
        let (s, why) = step(&config(), 50.0, at(30.0), Reading::Missing, true, 60_000);
        assert_eq!((s.rate, why), (30.0, Reason::Fallback));
    }

    #[test]
    fn too_few_responses_hold() {
        let (s, why) = step(&config(), 50.0, at(120.0), Reading::Thin, true, 60_000);
        assert_eq!((s.rate, why), (120.0, Reason::Thin));
    }

    #[test]
    fn it_starts_from_the_configured_rate_within_the_bounds() {
        assert_eq!(State::start(&config(), 500.0).rate, 200.0);
        assert_eq!(State::start(&config(), 50.0).rate, 50.0);
    }
}
