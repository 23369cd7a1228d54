//! `origin-queue pass mint` / `pass inspect` / `serve` as an operator runs them.

use std::process::{Command, Output};

const KEYS: &str = r#"{"active":"k2","keys":{"k1":"dGVzdC1rZXktb25lLXRlc3Qta2V5LW9uZS10ZXN0LWtleS0x","k2":"dGVzdC1rZXktdHdvLXRlc3Qta2V5LXR3by10ZXN0LWtleS0y"}}"#;

fn run(args: &[&str], keys: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_origin-queue"));
    cmd.args(args)
        .env_remove("WR_KEYS")
        .env_remove("WR_KEYS_FILE");
    if let Some(k) = keys {
        cmd.env("WR_KEYS", k);
    }
    cmd.output().unwrap()
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
    for args in [
        &["serve"][..],
        &[
            "pass",
            "mint",
            "--event",
            "e",
            "--visitor",
            "v",
            "--ttl",
            "5",
        ],
    ] {
        let o = run(args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("no signing keys configured"),
            "{o:?}"
        );
    }
    let short = run(
        &[
            "pass",
            "mint",
            "--event",
            "e",
            "--visitor",
            "v",
            "--ttl",
            "5",
        ],
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
    let ttl = run(
        &[
            "pass",
            "mint",
            "--event",
            "e",
            "--visitor",
            "v",
            "--ttl",
            "999999",
        ],
        Some(KEYS),
    );
    assert_eq!(ttl.status.code(), Some(2));
}
