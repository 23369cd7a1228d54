//! The shipped Envoy configuration: rendered the way `make up` renders it, it passes
//! `envoy --mode validate` (which also loads the filter and runs its configure step);
//! as committed, with no key ring, the filter refuses it.

use std::process::Command;

use wr_tests::envoy::{envoy_bin, validate};
use wr_tests::fixtures::{filter_wasm, workspace_root, KEYS_JSON};

/// Renders `envoy/envoy.yaml` into `out` as `make up` does, with the key ring `keys`
/// (none: `WR_KEYS` unset) and extra environment.
fn render(keys: Option<&str>, out: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let root = workspace_root();
    let mut cmd = Command::new(root.join("scripts/render-envoy-config"));
    cmd.arg(root.join("envoy/envoy.yaml"))
        .arg(out)
        .env("WR_WASM", filter_wasm())
        .env_remove("WR_KEYS_FILE")
        .envs(env.iter().copied());
    match keys {
        Some(k) => cmd.env("WR_KEYS", k),
        None => cmd.env_remove("WR_KEYS"),
    };
    cmd.output().expect("run render-envoy-config")
}

#[test]
fn rendered_envoy_yaml_passes_envoy_validate() {
    let out = std::env::temp_dir().join(format!("wr-envoy-validate-{}.yaml", std::process::id()));
    let r = render(Some(KEYS_JSON), &out, &[]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let (ok, text) = validate(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert!(
        ok && text.contains("OK"),
        "envoy {:?} says:\n{text}",
        envoy_bin()
    );
}

#[test]
fn the_compose_rendering_passes_envoy_validate() {
    let out = std::env::temp_dir().join(format!("wr-envoy-compose-{}.yaml", std::process::id()));
    let hosts = [
        ("WR_LISTEN_HOST", "0.0.0.0"),
        ("WR_QUEUE_HOST", "origin-queue"),
        ("WR_BACKEND_HOST", "demo-backend"),
    ];
    let r = render(Some(KEYS_JSON), &out, &hosts);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("type: STRICT_DNS")
            && text.contains("address: origin-queue, port_value: 8081")
    );
    let (ok, log) = validate(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert!(ok, "{log}");
}

/// One setting changes both sides: the variables origin-queue reads for its wire
/// settings also reach the filter's configuration, which Envoy then accepts.
#[test]
fn wire_settings_reach_the_filter_from_the_same_variables() {
    let out = std::env::temp_dir().join(format!("wr-envoy-wire-{}.yaml", std::process::id()));
    let wire = [
        ("WR_PASS_COOKIE", "shop_pass"),
        ("WR_TICKET_COOKIE", "shop_ticket"),
        ("WR_CLOCK_SKEW_SECONDS", "10"),
        ("WR_MAX_PASS_LIFETIME_SECONDS", "3600"),
    ];
    let r = render(Some(KEYS_JSON), &out, &wire);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    for field in [
        r#""pass_cookie": "shop_pass""#,
        r#""ticket_cookie": "shop_ticket""#,
        r#""clock_skew_seconds": 10"#,
        r#""max_pass_lifetime_seconds": 3600"#,
    ] {
        assert!(text.contains(field), "{field} missing");
    }
    let (ok, log) = validate(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert!(ok, "{log}");
}

/// The shipped Envoy drops header names with `_`, speaks HTTP/2 to origin-queue with
/// a circuit breaker sized for a crowd, and keeps origin-queue's internal routes off the
/// listener.
#[test]
fn the_shipped_envoy_is_hardened() {
    let text = std::fs::read_to_string(workspace_root().join("envoy/envoy.yaml")).unwrap();
    for needle in [
        "headers_with_underscores_action: DROP_HEADER",
        "max_request_headers_kb: 60",
        "max_pending_requests: 20000",
        "http2_protocol_options: { max_concurrent_streams: 100 }",
        "retry_on: refused-stream",
        "append_action: ADD_IF_ABSENT",
        r#"match: { prefix: "/v1/", case_sensitive: false }"#,
        r#"match: { path: "/metrics", case_sensitive: false }"#,
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from envoy/envoy.yaml"
        );
    }
    // The mapper that leaves the filter's own replies alone names them as the filter does.
    let details = wr_pass::wire::EDGE_REPLY_DETAILS;
    let mapper = format!("expression: \"response.code_details == '{details}'\"");
    assert!(
        text.contains(&mapper),
        "{mapper} missing from envoy/envoy.yaml"
    );
}

#[test]
fn no_key_ring_means_no_config() {
    let out = std::env::temp_dir().join(format!("wr-envoy-nokeys-{}.yaml", std::process::id()));
    let r = render(None, &out, &[]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("no default key"));
    // The committed template itself is refused by the filter at configure time.
    let template = workspace_root().join("envoy/envoy.yaml");
    let text = std::fs::read_to_string(&template).unwrap();
    let with_wasm = text.replace("__WASM__", &filter_wasm().to_string_lossy());
    std::fs::write(&out, with_wasm).unwrap();
    let (ok, log) = validate(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert!(!ok, "a config without keys validated:\n{log}");
    assert!(log.contains("wr-edge configuration"), "{log}");
}
