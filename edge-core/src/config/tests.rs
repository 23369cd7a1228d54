//! The configuration's defaults, and every problem it reports.

use super::*;

pub const KEYS: &str =
    r#"{"active":"k1","keys":{"k1":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}}"#;

pub fn minimal() -> String {
    format!(r#"{{"keys":{KEYS},"events":[{{"id":"concert","protected_prefixes":["/reserve"]}}]}}"#)
}

#[test]
fn minimal_config_gets_defaults() {
    let c = Config::from_json(minimal().as_bytes()).unwrap();
    assert_eq!(c.wire, Wire::default());
    assert_eq!(c.visitor_header, "x-wr-visitor");
    assert_eq!(c.waiting_room_for("concert"), "/waiting-room/concert");
    assert_eq!(c.client_rate_limit.unwrap().burst, 100);
    assert_eq!(c.in_line_rate_limit.unwrap().burst, 4_000);
    assert_eq!(c.max_request_header_bytes, 32 * 1024);
}

#[test]
fn the_header_limit_is_configurable_within_envoy_s_own() {
    let with = |bytes: usize| {
        let text = minimal().replacen('{', &format!(r#"{{"max_request_header_bytes":{bytes},"#), 1);
        Config::from_json(text.as_bytes())
    };
    assert_eq!(with(48 * 1024).unwrap().max_request_header_bytes, 48 * 1024);
    for wrong in [0, 8 * 1024 - 1, 60 * 1024 + 1] {
        let problems = with(wrong).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("max_request_header_bytes: between 8192 and 61440")),
            "{wrong}: {problems:?}"
        );
    }
}

#[test]
fn ticket_and_pass_cookies_must_differ() {
    let text = minimal().replacen('{', r#"{"ticket_cookie":"wr_pass","#, 1);
    let problems = Config::from_json(text.as_bytes()).unwrap_err();
    assert_eq!(problems, ["ticket_cookie and pass_cookie must differ"]);
    let text = minimal().replacen(
        '{',
        r#"{"in_line_rate_limit":{"requests_per_second":0,"burst":1},"#,
        1,
    );
    let problems = Config::from_json(text.as_bytes()).unwrap_err();
    assert_eq!(
        problems,
        ["in_line_rate_limit.requests_per_second: between 0.001 and 1000000"]
    );
}

#[test]
fn pass_lifetime_is_bounded_by_default_and_configurable() {
    let c = Config::from_json(minimal().as_bytes()).unwrap();
    assert_eq!(c.wire.max_pass_lifetime_seconds, 86_400);
    let text = minimal().replacen('{', r#"{"max_pass_lifetime_seconds":600,"#, 1);
    let c = Config::from_json(text.as_bytes()).unwrap();
    assert_eq!(c.wire.max_pass_lifetime_seconds, 600);
    assert!(c.wire_header.ends_with("max_pass_lifetime_seconds=600"));
    for bad in [0, 604_801] {
        let text = minimal().replacen('{', &format!(r#"{{"max_pass_lifetime_seconds":{bad},"#), 1);
        let problems = Config::from_json(text.as_bytes()).unwrap_err();
        assert_eq!(
            problems,
            ["max_pass_lifetime_seconds: between 1 and 604800"]
        );
    }
}

#[test]
fn prefixes_for_the_same_paths_are_refused() {
    let text = format!(
        r#"{{"keys":{KEYS},"events":[{{"id":"concert","protected_prefixes":["/reserve","/api/"]}}],
            "bypass_prefixes":["/RESERVE","/api","/static/","/Static/"]}}"#
    );
    let problems = Config::from_json(text.as_bytes()).unwrap_err();
    assert_eq!(
        problems,
        [
            r#"prefix "/reserve" (event "concert") names the same paths as "/RESERVE" (bypass_prefixes)"#,
            r#"prefix "/api/" (event "concert") names the same paths as "/api" (bypass_prefixes)"#,
        ]
    );
}

#[test]
fn prefixes_with_parameters_or_escapes_are_refused() {
    for prefix in ["/reserve;x", "/re%73erve", "/reserve seat"] {
        let text = minimal().replace("/reserve", prefix);
        assert!(Config::from_json(text.as_bytes()).is_err(), "{prefix}");
    }
}

/// The problems of the minimal configuration with `field` set to `value`.
fn problems_with(field: &str, value: &str) -> Vec<String> {
    let text = minimal().replacen('{', &format!(r#"{{"{field}":"{value}","#), 1);
    Config::from_json(text.as_bytes()).unwrap_err()
}

#[test]
fn identity_headers_must_not_have_a_second_spelling() {
    assert_eq!(
        problems_with("visitor_header", "x_visitor"),
        [r#"visitor_header: "x_visitor" must not contain '_' (many servers read it as '-')"#]
    );
}

#[test]
fn identity_headers_must_not_be_headers_the_filter_reads() {
    assert_eq!(
        problems_with("event_header", "cookie"),
        [r#"event_header: "cookie" is a header the filter reads or sets for itself"#]
    );
}

#[test]
fn null_turns_a_limit_off() {
    let text = minimal().replacen('{', r#"{"visitor_rate_limit":null,"#, 1);
    assert_eq!(
        Config::from_json(text.as_bytes())
            .unwrap()
            .visitor_rate_limit,
        None
    );
}

#[test]
fn every_problem_is_reported() {
    let text = r#"{
        "keys": {"active":"nope","keys":{"k1":"c2hvcnQ="}},
        "events": [{"id":"Bad Id","protected_prefixes":["reserve","/a/../b"]},
                   {"id":"ok","protected_prefixes":["/v1/"]}],
        "pass_cookie": "bad cookie",
        "visitor_header": "X-Visitor",
        "clock_skew_seconds": 9999,
        "waiting_room_path": "/wait",
        "client_rate_limit": {"requests_per_second": 0, "burst": 0},
        "rate_limit_slots": 0,
        "rate_limit_lease": 0
    }"#;
    let problems = Config::from_json(text.as_bytes()).unwrap_err();
    let all = problems.join("\n");
    for needle in [
        "keys: key \"k1\": secret is 5 bytes",
        "keys: active key \"nope\"",
        "events[0].id",
        "events[0].protected_prefixes[0]",
        "events[0].protected_prefixes[1]",
        "prefix \"/v1/\" is listed twice",
        "pass_cookie",
        "visitor_header: \"X-Visitor\" must be lower case",
        "clock_skew_seconds",
        "waiting_room_path",
        "client_rate_limit.requests_per_second",
        "client_rate_limit.burst",
        "rate_limit_slots",
        "rate_limit_lease",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
}

#[test]
fn syntax_and_type_errors_are_reported_not_panicked() {
    for text in [
        &b""[..],
        b"{",
        b"[]",
        b"null",
        b"{\"keys\":1}",
        b"\xff\xfe",
        b"{\"events\":[],\"keys\":{},\"x\":1}",
    ] {
        let problems = Config::from_json(text).unwrap_err();
        assert!(!problems.is_empty());
    }
}
