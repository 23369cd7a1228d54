//! The opening minute against a real six-node Redis Cluster: the pre-queue, the opening
//! draw (checked independently from what is published), two instances racing to draw,
//! and the queueing modes (random, passthrough, reject) switched while the event runs.
//! The service is built in-process (see `wr_tests::in_process`).

use std::collections::HashSet;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};
use wr_tests::fixtures::{now, wait_until};
use wr_tests::http::Target;
use wr_tests::in_process::InProcessRouter;
use wr_tests::processes::redis_cluster;
use wr_tests::queue_client::{
    admin, commitment_of, configure, draw_record, join, join_response, published_order,
    recompute_draw, status,
};

/// origin-queue's router in-process on the shared cluster (no socket is needed here).
fn queue() -> InProcessRouter {
    InProcessRouter::start(redis_cluster(), &[])
}

/// An event whose pre-queue opened a second ago and whose draw runs in `draw_in` s.
fn prequeue_event(api: impl Target, event: &str, draw_in: u64, overrides: Value) {
    let t = now();
    let mut cfg = json!({"prequeue_opens_at": t - 1, "opens_at": t + draw_in});
    for (k, v) in overrides.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    configure(api, event, cfg);
}

/// `n` new visitors join; their ids and tickets, in joining order.
fn entrants(api: impl Target, event: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|_| {
            let (body, ticket) = join(api, event, None);
            (body["visitor"].as_str().unwrap().to_owned(), ticket)
        })
        .collect()
}

/// Waits (at most `limit`) until `event`'s draw is published; its record.
fn drawn(api: impl Target, event: &str, limit: Duration) -> Value {
    assert!(
        wait_until(limit, || draw_record(api, event)["seed"].is_string()),
        "the draw of {event} was not published within {limit:?}"
    );
    draw_record(api, event)
}

/// Polls every ticket until each is admitted (claiming its pass); the grant times, in
/// the tickets' order.
fn admitted_at(api: impl Target, event: &str, tickets: &[&str], limit: Duration) -> Vec<u64> {
    let mut at: Vec<Option<u64>> = vec![None; tickets.len()];
    let all = wait_until(limit, || {
        for (slot, ticket) in at.iter_mut().zip(tickets) {
            if slot.is_none() {
                let body = status(api, event, ticket).json();
                if body["status"] == "admitted" {
                    *slot = Some(body["admitted_at_ms"].as_u64().expect("claimed now"));
                }
            }
        }
        at.iter().all(Option::is_some)
    });
    assert!(all, "not everyone was admitted within {limit:?}");
    at.into_iter().map(Option::unwrap).collect()
}

/// Whether an admission step of this instance has recorded the gauge `name` with
/// `label` at 1 for `event`.
fn stepped(api: impl Target, event: &str, name: &str, label: &str) -> bool {
    let metrics = String::from_utf8_lossy(&api.get("/metrics", &[]).unwrap().body).into_owned();
    metrics.contains(&format!("{name}{{event=\"{event}\",{label}}} 1"))
}

#[test]
fn a_visitor_in_the_prequeue_has_an_entry_in_the_draw_not_a_place() {
    let q = &queue();
    prequeue_event(q, "o-entry", 600, json!({}));
    let (first, _) = join(q, "o-entry", None);
    let (second, ticket) = join(q, "o-entry", None);
    assert_eq!(first["status"], "waiting", "{first}");
    assert_eq!(second["in_draw"], true, "{second}");
    assert!(
        second["position"].is_null(),
        "no place before the draw: {second}"
    );
    assert_eq!(second["entrants"], 2);
    let draw_at = second["draw_at"].as_u64().unwrap();
    assert!(draw_at.abs_diff(now() + 600) <= 2, "{second}");
    // The wait is that of any place among the entrants, starting at the opening.
    let range = second["eta_range_seconds"].as_array().unwrap();
    assert!(range[0].as_f64().unwrap() >= 590.0, "{second}");
    let polled = status(q, "o-entry", &ticket).json();
    assert_eq!(
        (polled["in_draw"].clone(), polled["entrants"].clone()),
        (json!(true), json!(2))
    );
    let public = q.get("/v1/events/o-entry", &[]).unwrap().json();
    assert_eq!(public["prequeue"]["state"], "open", "{public}");
    assert_eq!(public["prequeue"]["entrants"], 2, "{public}");
    assert_eq!(public["mode"], "fifo", "{public}");
}

#[test]
fn joining_before_the_prequeue_opens_is_refused_until_it_opens() {
    let q = &queue();
    let t = now();
    configure(
        q,
        "o-early",
        json!({"prequeue_opens_at": t + 100, "opens_at": t + 200}),
    );
    let r = join_response(q, "o-early", None);
    assert_eq!(r.status, 409, "{:?}", r.json());
    assert_eq!(r.json()["error"]["code"], "NOT_OPEN_YET");
    assert_eq!(r.json()["error"]["opens_at"], t + 100);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((98..=101).contains(&retry), "Retry-After {retry}");
}

#[test]
fn a_seed_is_committed_before_anyone_joins_and_revealed_only_after_the_draw() {
    let q = &queue();
    prequeue_event(q, "o-commit", 600, json!({}));
    let before = draw_record(q, "o-commit");
    assert!(before["seed"].is_null(), "{before}");
    assert_eq!(before["prequeue"], "open");
    let commitment = before["commitment"].as_str().unwrap().to_owned();
    assert_eq!(commitment.len(), 64);
    // Configuring the event again keeps the commitment: the seed cannot be swapped.
    prequeue_event(q, "o-commit", 600, json!({"rate_per_second": 50}));
    assert_eq!(draw_record(q, "o-commit")["commitment"], commitment);
    let order = q.get("/v1/events/o-commit/draw/order", &[]).unwrap();
    assert_eq!(order.status, 409);
    assert_eq!(order.json()["error"]["code"], "NOT_DRAWN_YET");
}

#[test]
fn admission_follows_the_published_draw_recomputed_independently() {
    let q = &queue();
    // 20 admissions a second, one at a time: the order of the grants is visible.
    prequeue_event(q, "o-draw", 3, json!({"rate_per_second": 20, "burst": 1}));
    let before = draw_record(q, "o-draw");
    let joined = entrants(q, "o-draw", 40);
    let record = drawn(q, "o-draw", Duration::from_secs(20));
    assert_eq!(
        (record["draws"].clone(), record["entrants"].clone()),
        (json!(1), json!(40))
    );
    let seed = record["seed"].as_str().unwrap();
    assert_eq!(
        commitment_of(seed),
        before["commitment"],
        "the seed matches its commitment"
    );

    let ids: Vec<String> = joined.iter().map(|(id, _)| id.clone()).collect();
    let expected = recompute_draw(seed, &ids);
    assert_eq!(published_order(q, "o-draw"), expected);
    assert_ne!(expected, ids, "a drawn order, not the order of arrival");

    // Tickets in drawn order; each is granted no earlier than the one before it.
    let ticket_of = |id: &String| joined.iter().find(|(v, _)| v == id).unwrap().1.as_str();
    let tickets: Vec<&str> = expected.iter().map(ticket_of).collect();
    let grants = admitted_at(q, "o-draw", &tickets, Duration::from_secs(30));
    let out_of_order = grants.windows(2).filter(|w| w[0] > w[1]).count();
    assert_eq!(out_of_order, 0, "grants in drawn order: {grants:?}");
}

#[test]
fn a_visitor_arriving_after_the_opening_queues_behind_the_draw() {
    let q = &queue();
    prequeue_event(q, "o-after", 2, json!({}));
    // Paused: the draw still runs at the opening, but nobody is admitted.
    admin(q, "POST", "/v1/admin/events/o-after/pause", &json!({}));
    let joined = entrants(q, "o-after", 5);
    drawn(q, "o-after", Duration::from_secs(20));
    let (late, _) = join(q, "o-after", None);
    assert_eq!(late["position"].as_u64(), Some(6), "{late}");
    assert!(late.get("in_draw").is_none(), "{late}");
    let places: HashSet<u64> = joined
        .iter()
        .filter_map(|(_, t)| status(q, "o-after", t).json()["position"].as_u64())
        .collect();
    assert_eq!(places, (1..=5).collect(), "{places:?}");
}

#[test]
fn two_instances_racing_to_draw_make_one_draw() {
    let (a, b) = (&queue(), &queue());
    prequeue_event(a, "o-race", 3, json!({"rate_per_second": 0.01, "burst": 1}));
    let mut joined = Vec::new();
    thread::scope(|s| {
        let ja = s.spawn(|| entrants(a, "o-race", 150));
        let jb = s.spawn(|| entrants(b, "o-race", 150));
        joined.extend(ja.join().unwrap());
        joined.extend(jb.join().unwrap());
    });
    let record = drawn(a, "o-race", Duration::from_secs(20));
    assert_eq!(record["draws"], 1, "{record}");
    assert_eq!(record["entrants"], 300, "{record}");
    let ids: Vec<String> = joined.iter().map(|(id, _)| id.clone()).collect();
    let seed = record["seed"].as_str().unwrap();
    assert_eq!(published_order(b, "o-race"), recompute_draw(seed, &ids));
    // Both instances step admission after the draw: still one draw.
    for q in [a, b] {
        assert!(wait_until(Duration::from_secs(10), || stepped(
            q,
            "o-race",
            "wr_prequeue_state",
            "state=\"drawn\""
        )));
    }
    assert_eq!(draw_record(b, "o-race")["draws"], 1);
}

#[test]
fn random_mode_admits_everyone_in_an_order_other_than_arrival() {
    let q = &queue();
    configure(
        q,
        "o-random",
        json!({"rate_per_second": 20, "burst": 1, "mode": "random"}),
    );
    admin(q, "POST", "/v1/admin/events/o-random/pause", &json!({}));
    let joined = entrants(q, "o-random", 30);
    let polled = status(q, "o-random", &joined[0].1).json();
    assert_eq!(polled["mode"], "random", "{polled}");
    assert!(
        polled["position"].is_null(),
        "no place in random mode: {polled}"
    );
    assert_eq!(polled["waiting"], 30);
    admin(q, "POST", "/v1/admin/events/o-random/resume", &json!({}));
    let tickets: Vec<&str> = joined.iter().map(|(_, t)| t.as_str()).collect();
    let grants = admitted_at(q, "o-random", &tickets, Duration::from_secs(30));
    // In arrival order, the grant times would never go down (30 visitors: a random
    // order does so with certainty but for 1 in 30!).
    let inversions = grants.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(
        inversions > 0,
        "admitted first come, first served: {grants:?}"
    );
}

#[test]
fn passthrough_lets_everyone_in_at_once_and_records_the_waits_there_would_be() {
    let q = &queue();
    configure(
        q,
        "o-dry",
        json!({"rate_per_second": 2, "burst": 1, "max_active": 100, "mode": "passthrough"}),
    );
    let joined = entrants(q, "o-dry", 12);
    for (_, ticket) in &joined {
        let body = status(q, "o-dry", ticket).json();
        assert_eq!(body["status"], "admitted", "{body}");
        assert!(body["pass"].is_string(), "{body}");
    }
    // At 2/s the dry run admits the twelve over six seconds: waits up to about 5.5 s.
    let stats = || admin(q, "GET", "/v1/admin/events/o-dry/stats", &json!({})).json();
    assert!(
        wait_until(Duration::from_secs(20), || stats()["dry_run"]
            ["admitted_total"]
            == 12),
        "{}",
        stats()
    );
    let dry = stats()["dry_run"].clone();
    assert_eq!(dry["waiting"], 0, "{dry}");
    assert!(dry["waiting_max"].as_u64().unwrap() >= 10, "{dry}");
    let max_wait = dry["max_wait_seconds"].as_f64().unwrap();
    assert!((4.0..8.0).contains(&max_wait), "{dry}");
    assert!(dry["mean_wait_seconds"].as_f64().unwrap() > 1.0, "{dry}");
    let metrics = String::from_utf8_lossy(&q.get("/metrics", &[]).unwrap().body).into_owned();
    assert!(metrics.contains("wr_event_mode{event=\"o-dry\",mode=\"passthrough\"} 1"));
    assert!(metrics.contains("wr_dry_run_admitted_total{event=\"o-dry\"}"));
}

#[test]
fn reject_mode_queues_nobody_and_switching_back_admits_the_line() {
    let q = &queue();
    configure(q, "o-reject", json!({"rate_per_second": 20}));
    admin(q, "POST", "/v1/admin/events/o-reject/pause", &json!({}));
    let (_, waiting) = join(q, "o-reject", None);
    configure(
        q,
        "o-reject",
        json!({"rate_per_second": 20, "mode": "reject"}),
    );
    admin(q, "POST", "/v1/admin/events/o-reject/resume", &json!({}));
    let refused = join_response(q, "o-reject", None);
    assert_eq!(refused.status, 200);
    assert!(
        refused.header("x-wr-ticket").is_none(),
        "no ticket: nobody is queued"
    );
    let refused = refused.json();
    assert_eq!(
        (refused["status"].clone(), refused["mode"].clone()),
        (json!("closed"), json!("reject"))
    );
    // The one already in line keeps the place but is not let in (once a step has run
    // in reject mode).
    assert!(wait_until(Duration::from_secs(10), || stepped(
        q,
        "o-reject",
        "wr_event_mode",
        "mode=\"reject\""
    )));
    let held = status(q, "o-reject", &waiting).json();
    assert_eq!(
        (held["status"].clone(), held["mode"].clone()),
        (json!("waiting"), json!("reject"))
    );
    let stats = admin(q, "GET", "/v1/admin/events/o-reject/stats", &json!({})).json();
    assert_eq!(
        (stats["mode"].clone(), stats["waiting"].clone()),
        (json!("reject"), json!(1))
    );
    configure(
        q,
        "o-reject",
        json!({"rate_per_second": 20, "mode": "fifo"}),
    );
    assert!(wait_until(Duration::from_secs(10), || {
        status(q, "o-reject", &waiting).json()["status"] == "admitted"
    }));
}
