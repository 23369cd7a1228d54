//! The wait of a visitor whose place is not known yet: an entrant of an opening draw
//! that has not run, or a visitor in line while each admission draws at random.

use crate::event::Observed;
use crate::wait::eta::{estimate, Estimate};

/// The wait of a visitor whose place is not known: one of `entrants` in an opening draw
/// not run yet, or one of those waiting while each admission draws at random. Every
/// place from the first to the last is as likely, so the estimate is that of the middle
/// place, the range runs from the first place's low end to the last one's high end, and
/// the confidence is the chance that a uniform place lands within ±20 % of the middle
/// (times the middle place's own).
pub fn estimate_unknown_place(entrants: u64, observed: &Observed) -> Estimate {
    let entrants = entrants.max(1);
    let first = estimate(1, observed);
    let last = estimate(entrants, observed);
    let middle = estimate(entrants.div_ceil(2), observed);
    let spread = last.eta_ms.saturating_sub(first.eta_ms) as f64;
    let uniform_within = if spread <= 0.0 {
        1.0
    } else {
        (0.4 * middle.eta_ms as f64 / spread).min(1.0)
    };
    Estimate {
        eta_ms: middle.eta_ms,
        low_ms: first.low_ms,
        high_ms: last.high_ms,
        confidence: (middle.confidence * uniform_within * 100.0).round() / 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_place_is_estimated_as_the_middle_one_with_the_whole_range() {
        // 1,000 entrants drawn at the opening in 60 s, admitted at 10/s: places 1 to
        // 1,000 wait 60.1 s to 160 s.
        let o = Observed {
            configured_rate: 10.0,
            opens_in_secs: 60.0,
            ..Observed::default()
        };
        let e = estimate_unknown_place(1_000, &o);
        assert_eq!(e.eta_ms, 110_000);
        assert!(e.low_ms <= 60_100 && e.high_ms.unwrap() >= 160_000, "{e:?}");
        // A uniform wait over 100 s holds ±20 % of 110 s (44 s) 44 % of the time.
        assert!(e.confidence <= 0.44 && e.confidence > 0.3, "{e:?}");
    }
}
