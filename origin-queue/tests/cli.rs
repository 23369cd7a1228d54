//! `origin-queue pass mint` / `pass inspect` / `serve` as an operator runs them.

use std::process::{Command, Output};

const KEYS: &str = r#"{"active":"k2","keys":{"k1":"dGVzdC1rZXktb25lLXRlc3Qta2V5LW9uZS10ZXN0LWtleS0x","k2":"dGVzdC1rZXktdHdvLXRlc3Qta2V5LXR3by10ZXN0LWtleS0y"}}"#;

fn run(args: &[&str], keys: Option<&str>) -> Output {
    run_with(args, keys, &[])
}

fn run_with(args: &[&str], keys: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_origin-queue"));
    cmd.args(args)
        .env_remove("WR_KEYS")
        .env_remove("WR_KEYS_FILE")
        .env_remove("WR_MAX_PASS_LIFETIME_SECONDS")
        .env_remove("WR_CONFIG_FILE")
        .envs(env.iter().copied());
    if let Some(k) = keys {
        cmd.env("WR_KEYS", k);
    }
    cmd.output().unwrap()
}

/// `pass mint` for visitor `v` of event `e`, living `ttl` seconds.
fn mint_args(ttl: &str) -> [&str; 8] {
    [
        "pass",
        "mint",
        "--event",
        "e",
        "--visitor",
        "v",
        "--ttl",
        ttl,
    ]
}

fn mint(ttl: &str, env: &[(&str, &str)]) -> Output {
    run_with(&mint_args(ttl), Some(KEYS), env)
}

/// `mint` never makes a pass the edge would refuse as too long-lived: the bound is the
/// same setting the edge reads (`WR_MAX_PASS_LIFETIME_SECONDS`, a day by default), and
/// `inspect` checks it as the edge does.
#[test]
fn mint_stays_within_the_longest_pass_lifetime() {
    assert!(mint("86400", &[]).status.success());
    let over = mint("86401", &[]);
    assert_eq!(over.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&over.stderr).contains("between 1 and 86400"),
        "{over:?}"
    );
    let hour = [("WR_MAX_PASS_LIFETIME_SECONDS", "3600")];
    assert!(mint("3600", &hour).status.success());
    let over = mint("3601", &hour);
    assert_eq!(over.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&over.stderr).contains("between 1 and 3600"),
        "{over:?}"
    );

    let day_pass = stdout(&mint("86400", &[])).trim().to_owned();
    let inspected = run_with(&["pass", "inspect", &day_pass], Some(KEYS), &hour);
    assert_eq!(inspected.status.code(), Some(1));
    assert!(
        stdout(&inspected).contains("INVALID: lifetime_too_long"),
        "{inspected:?}"
    );
    let bad = mint("60", &[("WR_MAX_PASS_LIFETIME_SECONDS", "0")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("max_pass_lifetime_seconds"),
        "{bad:?}"
    );
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn mint_then_inspect() {
    let minted = run(
        &[
            "pass",
            "mint",
            "--event",
            "concert",
            "--visitor",
            "v-1",
            "--ttl",
            "120",
        ],
        Some(KEYS),
    );
    assert!(minted.status.success(), "{minted:?}");
    let pass = stdout(&minted).trim().to_owned();
    assert!(pass.starts_with("p1.k2."), "{pass}");

    let inspected = run(
        &["pass", "inspect", &pass, "--event", "concert"],
        Some(KEYS),
    );
    assert!(inspected.status.success());
    let text = stdout(&inspected);
    assert!(
        text.contains("visitor:    v-1") && text.contains("VALID"),
        "{text}"
    );

    let json = run(&["pass", "inspect", &pass, "--json"], Some(KEYS));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        (v["valid"].as_bool(), v["claims"]["event"].as_str()),
        (Some(true), Some("concert"))
    );
}

#[test]
fn inspect_reports_why_a_pass_is_invalid() {
    let pass = stdout(&run(
        &[
            "pass",
            "mint",
            "--event",
            "concert",
            "--visitor",
            "v",
            "--ttl",
            "60",
        ],
        Some(KEYS),
    ));
    let pass = pass.trim();
    let wrong_event = run(&["pass", "inspect", pass, "--event", "other"], Some(KEYS));
    assert_eq!(wrong_event.status.code(), Some(1));
    assert!(stdout(&wrong_event).contains("INVALID: wrong_event"));
    let other_ring = KEYS.replace("dGVzdC1rZXktdHdv", "b3RoZXIta2V5LXR3");
    let forged = run(&["pass", "inspect", pass], Some(&other_ring));
    assert!(
        stdout(&forged).contains("INVALID: bad_signature"),
        "{}",
        stdout(&forged)
    );
    let garbage = run(&["pass", "inspect", "not-a-pass"], Some(KEYS));
    assert_eq!(garbage.status.code(), Some(1));
    let no_keys = run(&["pass", "inspect", pass], None);
    assert_eq!(no_keys.status.code(), Some(1));
    assert!(stdout(&no_keys).contains("signature not checked"));
}

#[test]
fn no_default_key_and_clear_usage_errors() {
    for args in [&["serve"][..], &mint_args("5")] {
        let o = run(args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("no signing keys configured"),
            "{o:?}"
        );
    }
    let short = run(
        &mint_args("5"),
        Some(r#"{"active":"k","keys":{"k":"c2hvcnQ="}}"#),
    );
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("at least 32"),
        "{short:?}"
    );
    let bad_event = run(
        &[
            "pass",
            "mint",
            "--event",
            "Bad/Event",
            "--visitor",
            "v",
            "--ttl",
            "5",
        ],
        Some(KEYS),
    );
    assert_eq!(bad_event.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_event.stderr).contains("event id"));
    let ttl = run(&mint_args("999999"), Some(KEYS));
    assert_eq!(ttl.status.code(), Some(2));
}

/// Settings the edge must share, or that bound the listener, are checked before
/// anything starts: a bad one stops `serve` with its name.
#[test]
fn bad_wire_and_listener_settings_refuse_to_start_and_say_why() {
    for (var, value, said) in [
        (
            "WR_PASS_COOKIE",
            "bad cookie",
            "pass_cookie: \"bad cookie\" is not a valid cookie name",
        ),
        (
            "WR_TICKET_COOKIE",
            "wr_pass",
            "ticket_cookie and pass_cookie must differ",
        ),
        (
            "WR_CLOCK_SKEW_SECONDS",
            "301",
            "clock_skew_seconds: at most 300",
        ),
        (
            "WR_MAX_PASS_LIFETIME_SECONDS",
            "604801",
            "max_pass_lifetime_seconds: between 1 and 604800",
        ),
        (
            "WR_LISTEN_BACKLOG",
            "0",
            "WR_LISTEN_BACKLOG: 0 is outside 1..=65535",
        ),
    ] {
        let o = run_with(&["serve"], Some(KEYS), &[(var, value)]);
        assert_eq!(o.status.code(), Some(2), "{var}={value}: {o:?}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(said), "{var}={value}: {stderr}");
    }
}

/// A pass that expired a few seconds ago is still accepted within the clock-skew
/// leeway: `inspect` says VALID and says why.
#[test]
fn inspect_says_when_only_the_leeway_lets_a_pass_through() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ring = wr_pass::KeyRing::from_json(KEYS).unwrap();
    let pass = ring
        .mint(
            wr_pass::TokenKind::Pass,
            &wr_pass::Claims::new("e", "v", now - 100, now - 10),
        )
        .unwrap();
    let inspected = run(&["pass", "inspect", &pass], Some(KEYS));
    assert!(inspected.status.success(), "{inspected:?}");
    let text = stdout(&inspected);
    // 10 s, or 11 if the second turned between minting and inspecting.
    assert!(
        text.contains("VALID")
            && text.contains("s ago, accepted within the 30 s clock-skew leeway")
            && (text.contains("expired 10 s ago") || text.contains("expired 11 s ago")),
        "{text}"
    );
}
