//! The estimate and its confidence, against the phases of a sale.

use super::*;

/// A sale admitting `rate`/s for 15 minutes, bound by `binding`.
fn steady(rate: f64, configured: f64, binding: Binding) -> Observed {
    Observed {
        last_1m: (rate * 60.0) as u64,
        last_5m: (rate * 300.0) as u64,
        last_15m: (rate * 900.0) as u64,
        configured_rate: configured,
        observing_secs: 3600.0,
        binding,
        ..Observed::default()
    }
}

fn within(actual: f64, expected: f64, share: f64) -> bool {
    (actual - expected).abs() <= share * expected
}

#[test]
fn cold_start_uses_the_configured_rate() {
    let o = Observed {
        configured_rate: 10.0,
        ..Observed::default()
    };
    let e = estimate(100, &o);
    assert_eq!(e.eta_ms, 10_000);
    assert!(e.low_ms < 10_000 && e.high_ms.unwrap() > 10_000, "{e:?}");
}

#[test]
fn before_the_opening_the_wait_starts_with_it() {
    let o = Observed {
        configured_rate: 10.0,
        opens_in_secs: 3600.0,
        ..Observed::default()
    };
    let e = estimate(100, &o);
    assert_eq!(e.eta_ms, 3_610_000);
    assert!(e.low_ms >= 3_600_000, "never before the opening: {e:?}");
    let far = Observed {
        opens_in_secs: 30.0 * 24.0 * 3600.0,
        ..o
    };
    assert_eq!(estimate(1, &far).eta_secs(), MAX_ETA_SECS);
}

#[test]
fn a_rate_step_up_counts_at_once_while_the_bucket_binds() {
    // 10/s for 15 minutes, then the operator sets 20/s: the history says 10.
    let o = steady(10.0, 20.0, Binding::Rate);
    assert_eq!(estimate(1001, &o).eta_ms, 50_050);
}

#[test]
fn a_rate_step_down_counts_at_once_while_the_bucket_binds() {
    let o = steady(20.0, 10.0, Binding::Rate);
    assert_eq!(estimate(1001, &o).eta_ms, 100_100);
}

#[test]
fn while_sessions_bind_places_free_as_sessions_end() {
    // Configured 50/s, but 99 places for sessions of 10 s (claimed about 0.6 s
    // after the grant): a place frees every 10.6/99 s.
    let o = Observed {
        max_active: 99,
        session_secs: 10.0,
        ..steady(30.0, 50.0, Binding::Slots)
    };
    let e = estimate(900, &o);
    assert!(
        within(e.eta_ms as f64, 900.0 * 10.6 / 99.0 * 1000.0, 0.001),
        "{e:?}"
    );
    let bucket = estimate(900, &steady(9.3, 9.3, Binding::Rate));
    let spread = |e: Estimate| e.high_ms.unwrap() - e.low_ms;
    assert!(
        spread(e) > 2 * spread(bucket),
        "sessions are less predictable"
    );
    assert!(e.confidence < bucket.confidence);
}

#[test]
fn while_sessions_bind_the_schedule_of_ending_sessions_is_the_forecast() {
    // 10 places, 10 s sessions: 5 free now, 5 ending in the last tenth (9–10 s).
    let o = Observed {
        max_active: 10,
        session_secs: 10.0,
        slot_ends: SlotEnds::parse("5,0,0,0,0,0,0,0,0,0,5").unwrap(),
        ..steady(1.0, 1000.0, Binding::Slots)
    };
    assert_eq!(
        estimate(5, &o).eta_ms,
        5,
        "a free place now (the bucket: 5 at 1,000/s)"
    );
    assert_eq!(estimate(10, &o).eta_ms, 10_000, "the last ending session");
    // The 15th: the first five places come round again a session (and a claim) later.
    assert_eq!(estimate(15, &o).eta_ms, 10_600);
    // Over max_active: 5 sessions too many, all ending in the first tenth, then 10
    // in the second: the first place frees after the fifth ending.
    let over = Observed {
        slot_ends: SlotEnds::parse("-5,5,10,0,0,0,0,0,0,0,0").unwrap(),
        ..o
    };
    assert_eq!(estimate(1, &over).eta_ms, 1_100);
    assert_eq!(estimate(10, &over).eta_ms, 2_000);
    assert_eq!(SlotEnds::parse("1,2"), None);
    assert_eq!(SlotEnds::parse(""), Some(SlotEnds(None)));
}

#[test]
fn silent_visitors_ahead_shorten_the_wait() {
    // 400 of a line of 2,000 have not polled for half an abandon timeout.
    let o = Observed {
        silent: 400,
        waiting: 2000,
        ..steady(10.0, 10.0, Binding::Rate)
    };
    // At the end of the line all of them are ahead; halfway, half.
    let end = estimate(2000, &o).eta_ms as f64;
    assert!(within(end, 160_000.0, 0.001), "{end}");
    let middle = estimate(1001, &o).eta_ms as f64;
    assert!(within(middle, 80_100.0, 0.001), "{middle}");
}

#[test]
fn recent_joiners_ahead_widen_the_range_and_a_settled_line_does_not() {
    // A line of 1,000: the last 300 joined too recently to be seen silent.
    let o = Observed {
        waiting: 1000,
        recent_joins: 300,
        ..steady(10.0, 10.0, Binding::Rate)
    };
    let spread = |e: Estimate| e.high_ms.unwrap() - e.low_ms;
    // At the head, every recent joiner is behind: only the rate and the grain.
    let settled = Observed {
        recent_joins: 0,
        ..o
    };
    assert_eq!(spread(estimate(500, &o)), spread(estimate(500, &settled)));
    // At the back, the 299 recent joiners ahead may walk away unseen.
    let back = estimate(1000, &o);
    assert_eq!(back.eta_ms, estimate(1000, &settled).eta_ms);
    assert!(
        spread(back) > spread(estimate(1000, &settled)) + 1_000,
        "{back:?}"
    );
}

#[test]
fn once_swept_walk_aways_are_not_counted_again() {
    // Nobody silent in line (the last pass swept them): everyone ahead needs a turn.
    let o = Observed {
        silent: 0,
        waiting: 2000,
        ..steady(10.0, 10.0, Binding::Rate)
    };
    assert_eq!(estimate(1001, &o).eta_ms, 100_100);
}

#[test]
fn while_paused_the_range_has_no_upper_end() {
    let o = Observed {
        paused: true,
        ..steady(10.0, 10.0, Binding::NotAdmitting)
    };
    let e = estimate(100, &o);
    assert_eq!(e.high_ms, None);
    assert!(e.confidence <= 0.2);
}

#[test]
fn short_waits_keep_sub_second_precision() {
    let e = estimate(3, &steady(50.0, 50.0, Binding::Rate));
    assert_eq!(e.eta_ms, 60);
    assert_eq!(e.eta_secs(), 1);
    assert!(e.high_ms.unwrap() < 1_000, "{e:?}");
}

#[test]
fn confidence_grows_with_a_predictable_wait() {
    let o = steady(10.0, 10.0, Binding::Rate);
    assert!(estimate(1000, &o).confidence > 0.99);
    assert!(
        estimate(1, &o).confidence < 0.2,
        "a 0.1 s wait is not ±20 % certain"
    );
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
fn erf_matches_known_values() {
    assert!(erf(0.0).abs() < 1e-7);
    assert!((erf(1.0) - 0.842_700_79).abs() < 1e-6);
    assert!((erf(-1.0) + 0.842_700_79).abs() < 1e-6);
    assert!((erf(1.163_087) - 0.9).abs() < 1e-5);
}
