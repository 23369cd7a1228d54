//! Judging what a runtime did with a case against the case's expectation: every
//! difference, in words. Native outcomes, and what a black-box runtime was seen to
//! forward or reply, are judged in the same JSON form.

use serde_json::{json, Map, Value};

use super::text;
use crate::outcome::Outcome;

/// The expectation of a path class under the vectors' configuration, for a request with
/// no cookie and no `Accept`: what every runtime must decide.
pub fn class_expectation(class: &str) -> Value {
    match class {
        "Bypass" => json!({"action": "forward", "counters": ["wr_edge_bypassed"]}),
        "Queue" => {
            json!({"action": "forward", "to_queue": true, "counters": ["wr_edge_queue_forwarded"]})
        }
        "NotNormalized" => json!({"action": "reply", "status": 400,
            "code": "PATH_NOT_NORMALIZED", "counters": ["wr_edge_path_rejected"]}),
        protected => {
            let event = protected.strip_prefix("protected:").unwrap_or(protected);
            json!({"action": "reply", "status": 403, "code": "NOT_ADMITTED",
                "waiting_room": format!("/waiting-room/{event}"),
                "counters": ["wr_edge_pass_missing", "wr_edge_denied"]})
        }
    }
}

/// Judges an outcome in its JSON form ([`Outcome::to_json`], which every runtime can
/// produce or be observed to produce) against `expect`: every difference, in words
/// (empty: it conforms).
pub fn judge(outcome: &Value, expect: &Value) -> Vec<String> {
    let mut wrong = Vec::new();
    let action = &outcome["action"];
    if expect["action"] != *action {
        wrong.push(format!("action {action}, expected {}", expect["action"]));
        return wrong;
    }
    if let Some(want) = expect["counters"].as_array() {
        let mut want: Vec<&str> = want.iter().filter_map(Value::as_str).collect();
        let mut got: Vec<&str> = strings(&outcome["counters"]);
        want.sort_unstable();
        got.sort_unstable();
        if want != got {
            wrong.push(format!("counters {got:?}, expected {want:?}"));
        }
    }
    if action == "forward" {
        judge_forward(outcome, expect, &mut wrong);
    } else {
        judge_reply(outcome, expect, &mut wrong);
    }
    wrong
}

/// Judges a native [`Outcome`] (see [`judge`]).
pub fn judge_outcome(outcome: &Outcome, expect: &Value) -> Vec<String> {
    judge(&serde_json::to_value(outcome).unwrap_or_default(), expect)
}

/// The JSON form of what a black-box runtime was seen to do with a forwarded request:
/// the headers it sent on (`after`) against those it was given (`before`). A pair that
/// is gone counts as removed (by its lower-cased name), a pair that is new as set; the
/// wire header set means the request was for origin-queue.
pub fn observed_forward(
    before: &[(String, String)],
    after: &[(String, String)],
    counters: &[String],
) -> Value {
    let same =
        |a: &(String, String), b: &(String, String)| a.0.eq_ignore_ascii_case(&b.0) && a.1 == b.1;
    let mut changes: Vec<Value> = before
        .iter()
        .filter(|pair| !after.iter().any(|other| same(pair, other)))
        .map(|(name, _)| json!({"op": "remove", "name": name.to_ascii_lowercase()}))
        .collect();
    let set: Vec<&(String, String)> = after
        .iter()
        .filter(|pair| !before.iter().any(|other| same(pair, other)))
        .collect();
    let to_queue = set
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(wr_pass::wire::WIRE_HEADER));
    changes.extend(set.iter().map(
        |(name, value)| json!({"op": "set", "name": name.to_ascii_lowercase(), "value": value}),
    ));
    json!({"action": "forward", "changes": changes, "to_queue": to_queue, "counters": counters})
}

/// The JSON form of a reply a black-box runtime was seen to send; the reason a pass was
/// refused is read from the counters, as the core derives it (none without counters).
pub fn observed_reply(
    status: u32,
    headers: &[(String, String)],
    body: &str,
    counters: &[String],
) -> Value {
    let rejection = crate::metrics::Counter::ALL
        .iter()
        .filter(|c| counters.iter().any(|n| n == c.name()))
        .find_map(|c| c.rejection());
    json!({"action": "reply", "status": status, "headers": headers, "body": body,
        "rejection": rejection, "counters": counters})
}

fn judge_forward(outcome: &Value, expect: &Value, wrong: &mut Vec<String>) {
    let want_queue = expect["to_queue"].as_bool().unwrap_or(false);
    let to_queue = outcome["to_queue"].as_bool().unwrap_or(false);
    if to_queue != want_queue {
        wrong.push(format!("to_queue {to_queue}, expected {want_queue}"));
    }
    let mut removed = Vec::new();
    let mut set = Map::new();
    for change in outcome["changes"].as_array().into_iter().flatten() {
        let name = text(&change["name"]);
        if change["op"] == "remove" {
            removed.push(name);
        } else {
            set.insert(name, change["value"].clone());
        }
    }
    let wire = set.remove(wr_pass::wire::WIRE_HEADER);
    if wire.is_some() != want_queue {
        wrong.push(format!(
            "wire header set: {}, expected {want_queue}",
            wire.is_some()
        ));
    }
    let mut want_removed: Vec<String> = strings(&expect["remove"])
        .into_iter()
        .map(str::to_owned)
        .collect();
    want_removed.sort();
    removed.sort();
    if removed != want_removed {
        wrong.push(format!("removed {removed:?}, expected {want_removed:?}"));
    }
    let want_set = expect["set"].as_object().cloned().unwrap_or_default();
    if set != want_set {
        wrong.push(format!("set {set:?}, expected {want_set:?}"));
    }
}

fn judge_reply(outcome: &Value, expect: &Value, wrong: &mut Vec<String>) {
    if expect["status"] != outcome["status"] {
        wrong.push(format!(
            "status {}, expected {}",
            outcome["status"], expect["status"]
        ));
    }
    let body: Value =
        serde_json::from_str(outcome["body"].as_str().unwrap_or("")).unwrap_or(Value::Null);
    for (field, got) in [
        ("code", &body["error"]["code"]),
        ("waiting_room", &body["error"]["waiting_room"]),
        ("rejection", &outcome["rejection"]),
    ] {
        if !expect[field].is_null() && &expect[field] != got {
            wrong.push(format!("{field} {got}, expected {}", expect[field]));
        }
    }
    for (name, want) in expect["headers"].as_object().into_iter().flatten() {
        let got = outcome["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|pair| {
                pair[0]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|pair| pair[1].as_str());
        if got != want.as_str() {
            wrong.push(format!("header {name}: {got:?}, expected {want}"));
        }
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}
