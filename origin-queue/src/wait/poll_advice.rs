//! How often a waiting visitor should poll.

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
