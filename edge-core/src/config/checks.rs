//! The checks of the configuration's fields that need more than a range: the events, the
//! path prefixes (each, and their overlaps), the rate limits. Each adds every problem it
//! finds, one line each.

use super::*;

pub(super) fn check_events(events: &[RawEvent], problems: &mut Vec<String>) {
    if events.is_empty() {
        problems.push("events: at least one event is required".into());
    }
    if events.len() > MAX_EVENTS {
        problems.push(format!("events: at most {MAX_EVENTS}"));
    }
    for (i, event) in events.iter().enumerate() {
        if let Err(e) = validate_event_id(&event.id) {
            problems.push(format!("events[{i}].id: {:?} {e}", event.id));
        }
        if events[..i].iter().any(|e| e.id == event.id) {
            problems.push(format!("events[{i}].id: {:?} is listed twice", event.id));
        }
        if let Some(cut) = event.not_before {
            if !(EARLIEST_CUT..LATEST_CUT).contains(&cut) {
                problems.push(format!(
                    "events[{i}].not_before: {cut} is not a time in unix seconds between {EARLIEST_CUT} (2020) and {LATEST_CUT} (2100)"
                ));
            }
        }
        if event.protected_prefixes.is_empty() {
            problems.push(format!(
                "events[{i}].protected_prefixes: at least one prefix is required"
            ));
        }
        check_prefixes(
            &format!("events[{i}].protected_prefixes"),
            &event.protected_prefixes,
            problems,
        );
    }
}

pub(super) fn check_prefixes(field: &str, prefixes: &[String], problems: &mut Vec<String>) {
    for (i, p) in prefixes.iter().enumerate() {
        let bad_char = p
            .bytes()
            .any(|b| !b.is_ascii_graphic() || matches!(b, b'?' | b'#' | b'%' | b'\\' | b';'));
        if !p.starts_with('/') || bad_char || p.len() > 256 {
            problems.push(format!(
                "{field}[{i}]: {p:?} must start with '/', be at most 256 printable characters, without ? # % ; or \\"
            ));
        } else if !is_normal_path(p.as_bytes()) {
            problems.push(format!(
                "{field}[{i}]: {p:?} is not a normalized path (no //, . or .. segments)"
            ));
        }
    }
}

/// Two prefixes for the same paths would make classification depend on list order
/// (or leave one of them without effect). A protected prefix names the same paths as
/// another prefix that differs only in case or in a trailing `/`.
pub(super) fn check_overlaps(raw: &RawConfig, problems: &mut Vec<String>) {
    // (prefix, owner, protected?)
    let mut all: Vec<(&str, String, bool)> = Vec::new();
    let lists = [
        ("queue_prefixes", &raw.queue_prefixes),
        ("bypass_prefixes", &raw.bypass_prefixes),
    ];
    for (field, list) in lists {
        all.extend(list.iter().map(|p| (p.as_str(), field.to_owned(), false)));
    }
    for event in &raw.events {
        let owner = format!("event {:?}", event.id);
        all.extend(
            event
                .protected_prefixes
                .iter()
                .map(|p| (p.as_str(), owner.clone(), true)),
        );
    }
    if all.len() > MAX_PREFIXES {
        problems.push(format!("at most {MAX_PREFIXES} path prefixes in all"));
    }
    let loose = |p: &str| ProtectedPrefix::new(p, false).compared();
    for (i, (p, owner, protected)) in all.iter().enumerate() {
        let earlier = all[..i].iter().find(|(q, _, q_protected)| {
            q == p || ((*protected || *q_protected) && loose(q) == loose(p))
        });
        match earlier {
            Some((q, first, _)) if q == p => problems.push(format!(
                "prefix {p:?} is listed twice ({first} and {owner})"
            )),
            Some((q, first, _)) => problems.push(format!(
                "prefix {p:?} ({owner}) names the same paths as {q:?} ({first})"
            )),
            None => {}
        }
    }
}

pub(super) fn check_rate_limit(field: &str, limit: &RateLimit, problems: &mut Vec<String>) {
    let rps = limit.requests_per_second;
    if !(0.001..=1_000_000.0).contains(&rps) {
        problems.push(format!(
            "{field}.requests_per_second: between 0.001 and 1000000"
        ));
    }
    if limit.burst == 0 || limit.burst > 1_000_000 {
        problems.push(format!("{field}.burst: between 1 and 1000000"));
    }
}
