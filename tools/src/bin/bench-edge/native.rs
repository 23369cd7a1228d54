//! What a user would configure instead of us: Envoy's `jwt_authn` and `local_ratelimit`.

use serde_json::{json, Value};

/// The HS256 key of the `jwt_authn` variant (a benchmark fixture, not a secret).
const JWT_KEY: &[u8] = b"bench-only-hs256-key-0123456789abcdef";

/// An HS256 JWT for `jwt_authn`: `{"iss":"wr","sub":visitor,"exp":now+1h}`.
pub fn hs256_jwt(visitor: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"iss": "wr", "sub": visitor, "exp": wr_tests::fixtures::now() + 3600});
    let payload = B64.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(JWT_KEY).expect("any key length");
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        B64.encode(mac.finalize().into_bytes())
    )
}

/// Envoy's own filters configured to do our job: a JWT from the `wr_jwt` cookie,
/// checked against an inline HS256 key, `sub` copied to the visitor header, and one
/// token bucket (high enough never to trigger).
pub fn native_filters() -> Value {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine as _;
    let jwks = json!({"keys": [{"kty": "oct", "alg": "HS256", "k": B64.encode(JWT_KEY)}]});
    let percent = json!({"default_value": {"numerator": 100, "denominator": "HUNDRED"}, "runtime_key": "unused"});
    json!([
        {"name": "envoy.filters.http.jwt_authn", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"wr": {
                "issuer": "wr",
                "from_cookies": ["wr_jwt"],
                "local_jwks": {"inline_string": jwks.to_string()},
                "claim_to_headers": [{"header_name": "x-wr-visitor", "claim_name": "sub"}]
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "wr"}}]
        }},
        {"name": "envoy.filters.http.local_ratelimit", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": "bench",
            "token_bucket": {"max_tokens": 1_000_000, "tokens_per_fill": 1_000_000, "fill_interval": "1s"},
            "filter_enabled": percent,
            "filter_enforced": percent
        }}
    ])
}
