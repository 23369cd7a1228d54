//! The backend ends a session: the response's changes, the report, and the pass refused
//! afterwards.

use super::*;
use crate::config::tests::KEYS;
use crate::config::Config;
use crate::decision::{Action, Decision};
use crate::local_store::LocalStore;
use wr_pass::{Claims, KeyRing};

const NOW: u64 = 1_800_000_000;

fn engine(extra: &str) -> Engine {
    let text = format!(
        r#"{{"keys":{KEYS},"events":[{{"id":"concert","protected_prefixes":["/reserve"]}}]{extra}}}"#
    );
    Engine::new(Config::from_json(text.as_bytes()).unwrap())
}

fn pass_issued(visitor: &str, issued: u64) -> String {
    let ring = KeyRing::from_json(KEYS).unwrap();
    let claims = Claims::new("concert", visitor, issued, issued + 600);
    ring.mint(TokenKind::Pass, &claims).unwrap()
}

fn session(pass: &str) -> Session {
    Session {
        event: "concert".into(),
        pass: pass.into(),
    }
}

fn request<'e>(e: &'e Engine, store: &LocalStore, pass: &str, accept: &str) -> Decision<'e> {
    let headers = vec![
        (b":path".to_vec(), b"/reserve/seat".to_vec()),
        (b"cookie".to_vec(), format!("wr_pass={pass}").into_bytes()),
        (b"accept".to_vec(), accept.as_bytes().to_vec()),
    ];
    let request = e.read_request(&headers, Some(b"1.2.3.4:5".as_slice()));
    e.decide(&request, NOW * 1000, store)
}

fn respond<'e>(
    e: &'e Engine,
    store: &LocalStore,
    session: Option<&Session>,
    headers: &[(&str, &str)],
) -> ResponseOutcome<'e> {
    let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
    e.respond(session, pairs, NOW * 1000, store)
}

#[test]
fn a_response_without_the_header_changes_nothing() {
    let (e, store) = (engine(""), LocalStore::default());
    let pass = pass_issued("v", NOW - 10);
    let out = respond(&e, &store, Some(&session(&pass)), &[("x-other", "1")]);
    assert_eq!(out, ResponseOutcome::default());
}

#[test]
fn the_header_expires_the_cookie_and_reports_the_pass() {
    let (e, store) = (engine(""), LocalStore::default());
    let pass = pass_issued("v", NOW - 10);
    let out = respond(
        &e,
        &store,
        Some(&session(&pass)),
        &[("x-wr-session-end", "1")],
    );
    assert_eq!(
        out.changes,
        vec![
            ResponseChange::Remove {
                name: "x-wr-session-end".into()
            },
            ResponseChange::Add {
                name: "set-cookie".into(),
                value: "wr_pass=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0".into()
            },
        ]
    );
    let report = out.report.expect("a report");
    assert_eq!(report.path, "/v1/events/concert/session-end");
    let body: SessionEndReport = serde_json::from_str(&report.body).unwrap();
    assert_eq!(body.pass, pass);
    assert_eq!(
        (report.cluster, report.authority),
        ("origin_queue", "origin_queue")
    );
    assert_eq!(out.counters.to_vec(), vec![Counter::SessionEnded]);
}

#[test]
fn the_ended_pass_is_refused_afterwards_with_a_page_that_says_so() {
    let (e, store) = (engine(""), LocalStore::default());
    let pass = pass_issued("v", NOW - 10);
    assert!(matches!(
        request(&e, &store, &pass, "text/html").action,
        Action::Forward { .. }
    ));
    respond(
        &e,
        &store,
        Some(&session(&pass)),
        &[("x-wr-session-end", "1")],
    );
    let Action::Reply(reply) = request(&e, &store, &pass, "text/html").action else {
        panic!("the ended pass was forwarded");
    };
    assert_eq!(reply.status, 302);
    assert_eq!(
        reply.headers[0].1,
        "/waiting-room/concert?session=ended&return_to=/reserve/seat"
    );
    let d = request(&e, &store, &pass, "application/json");
    let Action::Reply(reply) = d.action else {
        panic!("the ended pass was forwarded");
    };
    assert_eq!(reply.status, 403);
    assert!(reply.body.contains("SESSION_ENDED"), "{}", reply.body);
    assert_eq!(
        d.counters.to_vec(),
        vec![Counter::PassSessionEnded, Counter::Denied]
    );
}

#[test]
fn a_pass_issued_after_the_end_admits() {
    let (e, store) = (engine(""), LocalStore::default());
    let old = pass_issued("v", NOW - 10);
    respond(
        &e,
        &store,
        Some(&session(&old)),
        &[("x-wr-session-end", "1")],
    );
    let new = pass_issued("v", NOW + 1);
    let later = {
        let headers = vec![
            (b":path".to_vec(), b"/reserve".to_vec()),
            (b"cookie".to_vec(), format!("wr_pass={new}").into_bytes()),
        ];
        let request = e.read_request(&headers, None);
        matches!(
            e.decide(&request, (NOW + 2) * 1000, &store).action,
            Action::Forward { .. }
        )
    };
    assert!(later);
}

#[test]
fn other_visitors_keep_their_sessions() {
    let (e, store) = (engine(""), LocalStore::default());
    let ended = pass_issued("v", NOW - 10);
    respond(
        &e,
        &store,
        Some(&session(&ended)),
        &[("x-wr-session-end", "1")],
    );
    let other = pass_issued("w", NOW - 10);
    assert!(matches!(
        request(&e, &store, &other, "text/html").action,
        Action::Forward { .. }
    ));
}

#[test]
fn the_header_without_a_session_is_removed_and_ignored() {
    let (e, store) = (engine(""), LocalStore::default());
    let out = respond(&e, &store, None, &[("X-WR-Session-End", "1")]);
    assert_eq!(
        out.changes,
        vec![ResponseChange::Remove {
            name: "x-wr-session-end".into()
        }]
    );
    assert_eq!(out.report, None);
    assert_eq!(out.counters.to_vec(), vec![Counter::SessionEndIgnored]);
}

#[test]
fn other_values_are_removed_and_ignored() {
    let (e, store) = (engine(""), LocalStore::default());
    let pass = pass_issued("v", NOW - 10);
    for value in ["0", "yes", "", "1, 1", "11"] {
        let out = respond(
            &e,
            &store,
            Some(&session(&pass)),
            &[("x-wr-session-end", value)],
        );
        assert_eq!(out.report, None, "{value:?}");
        assert_eq!(out.counters.to_vec(), vec![Counter::SessionEndIgnored]);
    }
    let both = [("x-wr-session-end", "1"), ("x-wr-session-end", "0")];
    let out = respond(&e, &store, Some(&session(&pass)), &both);
    assert_eq!(out.report, None);
    assert!(matches!(
        request(&e, &store, &pass, "text/html").action,
        Action::Forward { .. }
    ));
}

#[test]
fn spaces_and_letter_case_of_the_name_do_not_matter() {
    let (e, store) = (engine(""), LocalStore::default());
    let pass = pass_issued("v", NOW - 10);
    let out = respond(
        &e,
        &store,
        Some(&session(&pass)),
        &[("X-Wr-Session-END", " 1 ")],
    );
    assert!(out.report.is_some());
}

#[test]
fn a_forged_session_is_ignored() {
    let (e, store) = (engine(""), LocalStore::default());
    let mut pass = pass_issued("v", NOW - 10);
    pass.pop();
    pass.push('A');
    let out = respond(
        &e,
        &store,
        Some(&session(&pass)),
        &[("x-wr-session-end", "1")],
    );
    assert_eq!(out.report, None);
    assert_eq!(out.counters.to_vec(), vec![Counter::SessionEndIgnored]);
}

#[test]
fn a_session_for_another_event_is_ignored() {
    let (e, store) = (engine(""), LocalStore::default());
    let pass = pass_issued("v", NOW - 10);
    let wrong = Session {
        event: "other".into(),
        pass,
    };
    let out = respond(&e, &store, Some(&wrong), &[("x-wr-session-end", "1")]);
    assert_eq!(out.report, None);
}

#[test]
fn the_session_travels_through_json() {
    let (e, store) = (engine(""), LocalStore::default());
    let pass = pass_issued("v", NOW - 10);
    let json = serde_json::to_string(&session(&pass)).unwrap();
    let headers = [(b"x-wr-session-end".as_slice(), b"1".as_slice())];
    let out = e.respond_json(&json, headers, NOW * 1000, &store);
    assert!(out.report.is_some());
    for junk in ["null", "", "{", r#"{"event":"concert"}"#] {
        let out = e.respond_json(junk, headers, NOW * 1000, &store);
        assert_eq!(out.counters.to_vec(), vec![Counter::SessionEndIgnored]);
    }
}

#[test]
fn switched_off_the_header_passes_untouched_and_no_session_is_carried() {
    let (e, store) = (engine(r#","session_end":null"#), LocalStore::default());
    let pass = pass_issued("v", NOW - 10);
    let Action::Forward { session, .. } = request(&e, &store, &pass, "text/html").action else {
        panic!("not forwarded");
    };
    assert_eq!(session, None);
    let out = respond(
        &e,
        &store,
        Some(&session_of(&pass)),
        &[("x-wr-session-end", "1")],
    );
    assert_eq!(out, ResponseOutcome::default());
}

fn session_of(pass: &str) -> Session {
    session(pass)
}

#[test]
fn settings_are_validated_with_every_problem_listed() {
    let text = format!(
        r#"{{"keys":{KEYS},"events":[{{"id":"e","protected_prefixes":["/r"]}}],
        "session_end":{{"header":"Set-Cookie","report_cluster":"","report_timeout_ms":5}}}}"#
    );
    let problems = Config::from_json(text.as_bytes()).unwrap_err();
    let text = problems.join("\n");
    assert!(text.contains("session_end.header"), "{text}");
    assert!(text.contains("session_end.report_cluster"), "{text}");
    assert!(text.contains("session_end.report_timeout_ms"), "{text}");
    for header in ["x-wr-visitor", "set-cookie", "x-wr-wire"] {
        let text = format!(
            r#"{{"keys":{KEYS},"events":[{{"id":"e","protected_prefixes":["/r"]}}],
            "session_end":{{"header":"{header}"}}}}"#
        );
        assert!(Config::from_json(text.as_bytes()).is_err(), "{header}");
    }
}

#[test]
fn a_secure_cookie_is_expired_as_secure() {
    let (e, store) = (
        engine(r#","session_end":{"cookie_secure":true,"report_authority":"queue.internal"}"#),
        LocalStore::default(),
    );
    let pass = pass_issued("v", NOW - 10);
    let out = respond(
        &e,
        &store,
        Some(&session(&pass)),
        &[("x-wr-session-end", "1")],
    );
    assert!(out.changes.contains(&ResponseChange::Add {
        name: "set-cookie".into(),
        value: "wr_pass=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Secure".into()
    }));
    assert_eq!(out.report.unwrap().authority, "queue.internal");
}
