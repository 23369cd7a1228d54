//! Decisions on rate limits and on traffic to origin-queue.

use super::*;

#[test]
fn rate_limits_per_client_and_on_the_queue() {
    let e = engine(LIMITS);
    let store = LocalStore::default();
    for _ in 0..3 {
        assert_eq!(
            status(&run_in(&e, &store, "/reserve", None, None, "1.1.1.1:1")),
            403
        );
    }
    let d = run_in(&e, &store, "/reserve", None, None, "1.1.1.1:2");
    assert_eq!((status(&d), code(&d)), (429, "RATE_LIMITED".to_owned()));
    // A different client is unaffected; the queue cap is global (burst 2).
    assert_eq!(
        status(&run_in(&e, &store, "/v1/events/x", None, None, "2.2.2.2:1")),
        200
    );
    assert_eq!(
        status(&run_in(&e, &store, "/v1/events/x", None, None, "3.3.3.3:1")),
        200
    );
    let d = run_in(&e, &store, "/v1/events/x", None, None, "4.4.4.4:1");
    assert_eq!(
        (status(&d), d.counters.to_vec()),
        (429, vec![Counter::RateLimitedQueue])
    );
    // Bypass paths are never limited.
    assert_eq!(
        status(&run_in(
            &e,
            &store,
            "/static/a.css",
            None,
            None,
            "1.1.1.1:1"
        )),
        200
    );
}

fn pass_of(visitor: &str) -> String {
    let ring = KeyRing::from_json(KEYS).unwrap();
    let claims = Claims::new("concert", visitor, NOW - 1, NOW + 600);
    format!("wr_pass={}", ring.mint(TokenKind::Pass, &claims).unwrap())
}

#[test]
fn visitors_with_passes_behind_one_address_are_not_limited_per_address() {
    let e = engine(LIMITS);
    let store = LocalStore::default();
    // The client limit's burst is 3; ten admitted visitors share one address.
    for i in 0..10 {
        let cookie = pass_of(&format!("vis-{i}"));
        let d = run_in(&e, &store, "/reserve", Some(&cookie), None, "1.1.1.1:1");
        assert_eq!(d.counters.to_vec(), vec![Counter::Admitted], "visitor {i}");
    }
}

#[test]
fn the_address_is_read_only_when_a_per_address_limit_applies() {
    let e = engine(LIMITS);
    let store = LocalStore::default();
    let asked = std::cell::Cell::new(0);
    let source = || {
        asked.set(asked.get() + 1);
        Some(b"1.1.1.1:1".to_vec())
    };
    let decide = |path: &str, cookie: &str| {
        let headers = vec![
            (b":path".to_vec(), path.as_bytes().to_vec()),
            (b"cookie".to_vec(), cookie.as_bytes().to_vec()),
        ];
        let request = e.read_request(&headers, None);
        status(&e.decide_with_source(&request, &source, NOW * 1000, &store))
    };
    assert_eq!(decide("/reserve", &pass_of("vis-1")), 200);
    assert_eq!(decide("/static/a.css", ""), 200);
    assert_eq!(asked.get(), 0);
    assert_eq!(decide("/reserve", "wr_pass=forged"), 403);
    assert_eq!(decide("/v1/events/concert/join", ""), 200);
    assert_eq!(asked.get(), 2);
}

#[test]
fn forged_passes_from_one_address_are_limited_per_address() {
    let e = engine(LIMITS);
    let store = LocalStore::default();
    let forged = format!("{}x", pass_of("vis-1"));
    let statuses: Vec<u32> = (0..4)
        .map(|_| {
            status(&run_in(
                &e,
                &store,
                "/reserve",
                Some(&forged),
                None,
                "1.1.1.1:1",
            ))
        })
        .collect();
    assert_eq!(statuses, [403, 403, 403, 429]);
}

#[test]
fn visitor_limit_applies_after_admission() {
    let e = engine(
        r#","client_rate_limit":null,"visitor_rate_limit":{"requests_per_second":1,"burst":1}"#,
    );
    let store = LocalStore::default();
    let cookie = format!("wr_pass={}", pass("concert", NOW + 60));
    assert_eq!(
        status(&run_in(
            &e,
            &store,
            "/reserve",
            Some(&cookie),
            None,
            "1.1.1.1:1"
        )),
        200
    );
    let d = run_in(&e, &store, "/reserve", Some(&cookie), None, "9.9.9.9:1");
    assert_eq!(
        (status(&d), d.counters.to_vec()),
        (429, vec![Counter::RateLimitedVisitor])
    );
}

fn ticket(visitor: &str, exp: u64) -> String {
    let ring = KeyRing::from_json(KEYS).unwrap();
    ring.mint(
        TokenKind::Ticket,
        &Claims::new("concert", visitor, exp - 600, exp),
    )
    .unwrap()
}

fn run_with<'e>(e: &'e Engine, s: &LocalStore, headers: &[(&str, &str)]) -> Decision<'e> {
    let mut all = vec![(b":path".to_vec(), b"/v1/events/concert/status".to_vec())];
    all.extend(
        headers
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())),
    );
    let request = e.read_request(&all, Some(b"5.5.5.5:1".as_slice()));
    e.decide(&request, NOW * 1000, s)
}

#[test]
fn a_join_flood_cannot_take_the_polls_of_visitors_in_line() {
    let e = engine(
        r#","client_rate_limit":null,"visitor_rate_limit":{"requests_per_second":1,"burst":2},
           "queue_rate_limit":{"requests_per_second":1,"burst":2},
           "in_line_rate_limit":{"requests_per_second":1,"burst":3}"#,
    );
    let store = LocalStore::default();
    // New visitors use up the queue budget...
    for _ in 0..2 {
        assert_eq!(status(&run_with(&e, &store, &[])), 200);
    }
    let d = run_with(&e, &store, &[]);
    assert_eq!(
        (status(&d), d.counters.to_vec()),
        (429, vec![Counter::RateLimitedQueue])
    );
    // ...and so do tickets that are forged, expired or of another kind.
    // vis-2's claims under vis-1's signature.
    let (one, two) = (ticket("vis-1", NOW + 600), ticket("vis-2", NOW + 600));
    let part = |t: &str, i: usize| t.split('.').nth(i).unwrap().to_owned();
    let forged = format!("t1.k1.{}.{}", part(&two, 2), part(&one, 3));
    for bad in [
        format!("wr_ticket={}x", ticket("vis-1", NOW + 600)),
        format!("wr_ticket={forged}"),
        format!("wr_ticket={}", ticket("vis-1", NOW - 3600)),
        format!("wr_ticket={}", pass("concert", NOW + 600)),
    ] {
        let d = run_with(&e, &store, &[("cookie", &bad)]);
        assert_eq!(
            d.counters.to_vec(),
            vec![Counter::RateLimitedQueue],
            "{bad}"
        );
    }
    // A visitor in line still gets through, by cookie or by header.
    let cookie = format!("wr_ticket={}", ticket("vis-1", NOW + 600));
    let d = run_with(&e, &store, &[("cookie", &cookie)]);
    assert_eq!(
        (status(&d), d.counters.to_vec()),
        (
            200,
            vec![Counter::QueueForwarded, Counter::QueueForwardedInLine]
        )
    );
    let header = ticket("vis-2", NOW + 600);
    let d = run_with(&e, &store, &[("X-WR-Ticket", &header)]);
    assert_eq!(status(&d), 200);
    // Their own bucket bounds each of them; the in-line budget bounds all of them.
    let d = run_with(&e, &store, &[("cookie", &cookie)]);
    assert_eq!(status(&d), 200);
    let d = run_with(&e, &store, &[("cookie", &cookie)]);
    assert_eq!(d.counters.to_vec(), vec![Counter::RateLimitedVisitor]);
    let third = format!("wr_ticket={}", ticket("vis-3", NOW + 600));
    let d = run_with(&e, &store, &[("cookie", &third)]);
    assert_eq!(d.counters.to_vec(), vec![Counter::RateLimitedInLine]);
}

#[test]
fn only_the_first_few_ticket_candidates_are_checked() {
    let e = engine(r#","queue_rate_limit":{"requests_per_second":1,"burst":1}"#);
    let store = LocalStore::default();
    let junk = "wr_ticket=t1.k1.e30.AAAA; ".repeat(MAX_TICKET_CANDIDATES);
    let valid = ticket("vis-1", NOW + 600);
    let late = format!("{junk}wr_ticket={valid}");
    assert_eq!(
        run_with(&e, &store, &[("cookie", &late)]).counters.to_vec(),
        vec![Counter::QueueForwarded]
    );
    let d = run_with(
        &e,
        &store,
        &[("cookie", &format!("wr_ticket={valid}; {junk}"))],
    );
    assert_eq!(
        d.counters.to_vec(),
        vec![Counter::QueueForwarded, Counter::QueueForwardedInLine]
    );
}
