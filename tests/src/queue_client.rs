//! The calls the queue tests make to origin-queue's HTTP API (admin with the tests'
//! bearer token, join, status), over a socket or to the router in-process (any
//! [`Target`]), and the independent check of an opening draw.

use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::fixtures::now;
use crate::http::{Response, Target};
use crate::processes::ADMIN_TOKEN;

/// An admin API call with the tests' bearer token.
pub fn admin(api: impl Target, method: &str, path: &str, body: &Value) -> Response {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    api.request(
        method,
        path,
        &[("authorization", auth.as_bytes())],
        body.to_string().as_bytes(),
    )
    .unwrap()
}

/// Creates or replaces `event`: open since a second ago for an hour, 100 admissions/s,
/// with `overrides` merged in; panics unless accepted.
pub fn configure(api: impl Target, event: &str, overrides: Value) {
    let t = now();
    let mut cfg = json!({"rate_per_second": 100, "burst": 100, "max_active": 100000, "session_seconds": 600,
        "claim_seconds": 30, "abandon_seconds": 60, "opens_at": t - 1, "closes_at": t + 3600});
    for (k, v) in overrides.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    let r = admin(api, "PUT", &format!("/v1/admin/events/{event}"), &cfg);
    assert_eq!(r.status, 200, "{:?}", r.json());
}

/// Joins (with a ticket if given); returns the body and the ticket to use next.
pub fn join(api: impl Target, event: &str, ticket: Option<&str>) -> (Value, String) {
    let r = join_response(api, event, ticket);
    assert_eq!(r.status, 200, "{:?}", r.json());
    let ticket = r.header("x-wr-ticket").expect("ticket header").to_owned();
    assert!(r
        .headers
        .iter()
        .any(|(n, v)| n == "set-cookie" && v.starts_with("wr_ticket=") && v.contains("HttpOnly")));
    (r.json(), ticket)
}

/// The raw answer to a join (with a ticket if given).
pub fn join_response(api: impl Target, event: &str, ticket: Option<&str>) -> Response {
    let headers: Vec<(&str, &[u8])> = ticket
        .map(|t| vec![("x-wr-ticket", t.as_bytes())])
        .unwrap_or_default();
    api.request("POST", &format!("/v1/events/{event}/join"), &headers, b"")
        .unwrap()
}

/// The answer to a join carrying `solution` in the proof-of-work header.
pub fn join_with_work(api: impl Target, event: &str, solution: &str) -> Response {
    api.request(
        "POST",
        &format!("/v1/events/{event}/join"),
        &[(wr_pass::wire::POW_HEADER, solution.as_bytes())],
        b"",
    )
    .unwrap()
}

/// Joins an event that asks for proof of work as a new visitor would: a join without
/// work for the challenge, the reference solver, the join again. Returns the body and
/// the ticket.
pub fn join_solving(api: impl Target, event: &str) -> (Value, String) {
    let asked = join_response(api, event, None);
    assert_eq!(
        asked.error_code().as_deref(),
        Some("POW_REQUIRED"),
        "{:?}",
        asked.json()
    );
    let pow = &asked.json()["error"]["pow"];
    let difficulty = pow["difficulty"].as_u64().unwrap() as u8;
    let solution = wr_pass::pow::solve(pow["challenge"].as_str().unwrap(), difficulty);
    let r = join_with_work(api, event, &solution);
    assert_eq!(r.status, 200, "{:?}", r.json());
    (r.json(), r.header("x-wr-ticket").unwrap().to_owned())
}

/// A status poll with `ticket`.
pub fn status(api: impl Target, event: &str, ticket: &str) -> Response {
    api.get(
        &format!("/v1/events/{event}/status"),
        &[("x-wr-ticket", ticket.as_bytes())],
    )
    .unwrap()
}

/// The order an opening draw must give, recomputed here from the published seed and
/// the entrants' ids, written from the published procedure (not origin-queue's code):
/// ascending bytes of hex(SHA-1(seed ":" id)) followed by the id.
pub fn recompute_draw(seed: &str, entrants: &[String]) -> Vec<String> {
    let mut keyed: Vec<(String, &String)> = entrants
        .iter()
        .map(|id| {
            let digest = Sha1::digest(format!("{seed}:{id}").as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            (hex + id, id)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, id)| id.clone()).collect()
}

/// The published commitment to `seed`: hex(SHA-256(seed)).
pub fn commitment_of(seed: &str) -> String {
    Sha256::digest(seed.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The whole published drawn order of `event`, page by page.
pub fn published_order(api: impl Target, event: &str) -> Vec<String> {
    let mut all = Vec::new();
    loop {
        let page = api
            .get(
                &format!(
                    "/v1/events/{event}/draw/order?offset={}&limit=10000",
                    all.len()
                ),
                &[],
            )
            .unwrap();
        assert_eq!(page.status, 200, "{:?}", page.json());
        let entrants = page.json()["entrants"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if entrants.is_empty() {
            return all;
        }
        all.extend(entrants.iter().map(|v| v.as_str().unwrap().to_owned()));
    }
}

/// The published draw record of `event`.
pub fn draw_record(api: impl Target, event: &str) -> Value {
    let r = api.get(&format!("/v1/events/{event}/draw"), &[]).unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    r.json()
}
