//! Optional JWT identity: one place per user, whatever the number of devices; forged,
//! expired, wrong-audience and unsigned tokens refused; keys from a JWKS file or URL.
//! The API is called in-process (the router, no port); a bad key source refusing the
//! start is shown by the binary.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use wr_tests::fixtures::{now, workspace_root};
use wr_tests::http::{Response, Target};
use wr_tests::in_process::InProcessRouter;
use wr_tests::processes::redis_cluster;
use wr_tests::queue_client::admin;
use wr_tests::upstream::Upstream;

const ISSUER: &str = "https://id.test";
const AUDIENCE: &str = "waiting-room";

fn fixture(name: &str) -> std::path::PathBuf {
    workspace_root().join("tests/fixtures/jwt").join(name)
}

fn token(key_file: &str, kid: &str, claims: serde_json::Value) -> String {
    let pem = std::fs::read(fixture(key_file)).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    encode(&header, &claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
}

fn user(sub: &str) -> String {
    token(
        "test-signer.pem",
        "test-rsa",
        json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600}),
    )
}

fn join(q: impl Target, event: &str, bearer: Option<&str>) -> Response {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &[u8])> = auth
        .as_ref()
        .map(|a| vec![("authorization", a.as_bytes())])
        .unwrap_or_default();
    q.request("POST", &format!("/v1/events/{event}/join"), &headers, b"")
        .unwrap()
}

/// Creates `event`, opening in 3,000 s: the line only grows during a test.
fn configure(q: impl Target, event: &str) {
    let t = now();
    let r = admin(
        q,
        "PUT",
        &format!("/v1/admin/events/{event}"),
        &json!({"rate_per_second": 1, "burst": 1, "max_active": 10, "session_seconds": 60,
            "claim_seconds": 30, "abandon_seconds": 60, "opens_at": t + 3000, "closes_at": t + 7200}),
    );
    assert_eq!(r.status, 200, "{:?}", r.json());
}

#[test]
fn one_place_per_user_and_bad_tokens_refused() {
    let jwks = fixture("jwks.json");
    let q = &InProcessRouter::start(
        redis_cluster(),
        &[
            ("WR_JWT_JWKS_FILE", jwks.to_str().unwrap()),
            ("WR_JWT_ISSUER", ISSUER),
            ("WR_JWT_AUDIENCE", AUDIENCE),
            ("WR_JWT_REQUIRED", "1"),
        ],
    );
    configure(q, "t-jwt");
    let none = join(q, "t-jwt", None);
    assert_eq!(
        (none.status, none.error_code().as_deref()),
        (401, Some("JWT_REQUIRED"))
    );

    // Alice on two devices (no shared ticket) holds one place; Bob is behind her.
    let phone = join(q, "t-jwt", Some(&user("alice"))).json();
    let laptop = join(q, "t-jwt", Some(&user("alice"))).json();
    let bob = join(q, "t-jwt", Some(&user("bob"))).json();
    assert_eq!(phone["visitor"], laptop["visitor"]);
    assert_eq!(
        (
            phone["position"].as_u64(),
            laptop["position"].as_u64(),
            bob["position"].as_u64()
        ),
        (Some(1), Some(1), Some(2))
    );

    let t = now();
    let refused = [
        (
            "forged",
            token(
                "not-trusted.pem",
                "test-rsa",
                json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": t + 600}),
            ),
        ),
        (
            "unknown kid",
            token(
                "test-signer.pem",
                "other",
                json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": t + 600}),
            ),
        ),
        (
            "expired",
            token(
                "test-signer.pem",
                "test-rsa",
                json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": t - 600}),
            ),
        ),
        (
            "audience",
            token(
                "test-signer.pem",
                "test-rsa",
                json!({"sub": "alice", "iss": ISSUER, "aud": "elsewhere", "exp": t + 600}),
            ),
        ),
        (
            "issuer",
            token(
                "test-signer.pem",
                "test-rsa",
                json!({"sub": "alice", "iss": "https://evil.test", "aud": AUDIENCE, "exp": t + 600}),
            ),
        ),
        // alg "none", and HS256 signed with the public key's text: classic confusions.
        (
            "none",
            format!(
                "{}.{}.",
                b64(r#"{"alg":"none","kid":"test-rsa"}"#),
                b64(&format!(
                    r#"{{"sub":"alice","iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{}}}"#,
                    t + 600
                ))
            ),
        ),
        ("hs256", hs256_with_public_jwks(t)),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (name, bad) in refused {
        let r = join(q, "t-jwt", Some(&bad));
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (401, Some("JWT_INVALID")),
            "{name}: {:?}",
            r.json()
        );
    }
    let public = q.get("/v1/events/t-jwt", &[]).unwrap().json();
    assert_eq!(public["waiting"], 2, "refused tokens took no place");
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn hs256_with_public_jwks(t: u64) -> String {
    let secret = std::fs::read(fixture("jwks.json")).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("test-rsa".into());
    let claims = json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": t + 600});
    encode(&header, &claims, &EncodingKey::from_secret(&secret)).unwrap()
}

#[test]
fn keys_can_come_from_a_jwks_url_and_a_bad_source_stops_startup() {
    let jwks = std::fs::read_to_string(fixture("jwks.json")).unwrap();
    let server = Upstream::start_with_body(&jwks);
    let url = format!("http://{}/.well-known/jwks.json", server.addr);
    let q = &InProcessRouter::start(
        redis_cluster(),
        &[
            ("WR_JWT_JWKS_URL", &url),
            ("WR_JWT_ISSUER", ISSUER),
            ("WR_JWT_AUDIENCE", AUDIENCE),
        ],
    );
    configure(q, "t-jwt-url");
    let a = join(q, "t-jwt-url", Some(&user("carol")));
    assert_eq!(a.status, 200, "{:?}", a.json());
    assert!(a.json()["visitor"].as_str().unwrap().starts_with('u'));
    // Tokens are optional here: anonymous visitors still join.
    assert_eq!(join(q, "t-jwt-url", None).status, 200);

    let out = std::process::Command::new(wr_tests::processes::origin_queue_bin())
        .arg("serve")
        .env("WR_KEYS", wr_tests::fixtures::KEYS_JSON)
        .env("WR_REDIS_NODES", redis_cluster().join(","))
        .env("WR_LISTEN", "127.0.0.1:0")
        .env("WR_JWT_JWKS_FILE", "/nonexistent/jwks.json")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("JWKS file"),
        "{out:?}"
    );
}
