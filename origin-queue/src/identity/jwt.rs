//! Optional user identity: an OIDC JWT (`Authorization: Bearer …`) on join makes the
//! place belong to the user, so one user holds one place whatever the number of
//! tickets or devices.
//!
//! Keys come from a JWKS file (`WR_JWT_JWKS_FILE`) or URL (`WR_JWT_JWKS_URL`), are
//! cached, refreshed every `WR_JWT_JWKS_REFRESH_SECS` (300) and at most every 30 s when a
//! token names an unknown key id. Only asymmetric algorithms are accepted; the issuer
//! (`WR_JWT_ISSUER`) and audience (`WR_JWT_AUDIENCE`) are checked when configured, and
//! expiry always.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Where the keys come from.
#[derive(Clone, Debug)]
pub enum JwksSource {
    /// A local file.
    File(String),
    /// An http(s) URL.
    Url(String),
}

/// JWT settings.
#[derive(Clone, Debug)]
pub struct JwtSettings {
    /// Key source.
    pub source: JwksSource,
    /// Expected `iss`, if any.
    pub issuer: Option<String>,
    /// Expected `aud`, if any.
    pub audience: Option<String>,
    /// Refuse joins without a valid token.
    pub required: bool,
    /// Periodic refresh.
    pub refresh: Duration,
}

/// Why a token was refused (the message is safe to show).
#[derive(Debug)]
pub struct JwtError(pub String);

#[derive(Deserialize)]
struct UserClaims {
    sub: String,
    #[serde(default)]
    iss: Option<String>,
}

type Keys = HashMap<String, (DecodingKey, Algorithm)>;

/// Verifies tokens against the cached key set.
pub struct JwtVerifier {
    settings: JwtSettings,
    keys: RwLock<Arc<Keys>>,
    last_fetch: RwLock<Instant>,
    http: reqwest::Client,
}

/// Shortest time between two fetches triggered by unknown key ids.
const MIN_REFETCH: Duration = Duration::from_secs(30);

impl JwtVerifier {
    /// Loads the keys once; fails if they cannot be loaded.
    pub async fn load(settings: JwtSettings) -> Result<JwtVerifier, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("JWKS client: {e}"))?;
        let verifier = JwtVerifier {
            settings,
            keys: RwLock::new(Arc::new(Keys::new())),
            last_fetch: RwLock::new(Instant::now()),
            http,
        };
        let keys = verifier.fetch().await?;
        *verifier.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        Ok(verifier)
    }

    /// Whether joins need a token.
    pub fn required(&self) -> bool {
        self.settings.required
    }

    async fn fetch(&self) -> Result<Keys, String> {
        let text = match &self.settings.source {
            JwksSource::File(path) => {
                std::fs::read_to_string(path).map_err(|e| format!("JWKS file {path:?}: {e}"))?
            }
            JwksSource::Url(url) => {
                let response = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| format!("JWKS URL {url}: {e}"))?;
                if !response.status().is_success() {
                    return Err(format!("JWKS URL {url}: HTTP {}", response.status()));
                }
                response
                    .text()
                    .await
                    .map_err(|e| format!("JWKS URL {url}: {e}"))?
            }
        };
        let set: JwkSet =
            serde_json::from_str(&text).map_err(|e| format!("JWKS is not a key set: {e}"))?;
        let mut keys = Keys::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            let alg = match jwk.common.key_algorithm.map(|a| a.to_string()) {
                Some(a) => a
                    .parse::<Algorithm>()
                    .map_err(|_| format!("JWKS key {kid:?}: unsupported alg {a}"))?,
                None => match &jwk.algorithm {
                    jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                    jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                    _ => continue,
                },
            };
            if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
                continue;
            }
            keys.insert(kid, (key, alg));
        }
        if keys.is_empty() {
            return Err("JWKS holds no usable asymmetric key with a key id".into());
        }
        *self.last_fetch.write().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        Ok(keys)
    }

    /// Refetches the keys; keeps the old ones on failure.
    pub async fn refresh(&self) {
        match self.fetch().await {
            Ok(keys) => *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys),
            Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; keeping the cached keys"),
        }
    }

    /// Refreshes periodically until the process ends.
    pub fn spawn_refresh(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(me.settings.refresh).await;
                me.refresh().await;
            }
        });
    }

    /// The visitor id of the user the token names.
    pub async fn visitor(&self, token: &str) -> Result<String, JwtError> {
        let header = decode_header(token).map_err(|_| JwtError("not a JWT".into()))?;
        let kid = header
            .kid
            .ok_or_else(|| JwtError("the token names no key id".into()))?;
        let mut keys = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        if !keys.contains_key(&kid) {
            let stale = self
                .last_fetch
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed()
                >= MIN_REFETCH;
            if stale {
                self.refresh().await;
                keys = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
            }
        }
        let (key, alg) = keys
            .get(&kid)
            .ok_or_else(|| JwtError("unknown key id".into()))?;
        if header.alg != *alg {
            return Err(JwtError("algorithm does not match the key".into()));
        }
        let mut validation = Validation::new(*alg);
        validation.leeway = 30;
        match &self.settings.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &self.settings.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let data = decode::<UserClaims>(token, key, &validation)
            .map_err(|e| JwtError(format!("token refused: {e}")))?;
        if data.claims.sub.is_empty() {
            return Err(JwtError("the token has no subject".into()));
        }
        Ok(visitor_for(
            data.claims.iss.as_deref().unwrap_or(""),
            &data.claims.sub,
        ))
    }
}

/// A stable visitor id for (issuer, subject): `u` + 21 base64url characters of SHA-256.
/// Stable across replicas and key rotations; reveals nothing a backend that sees the
/// subject does not already know.
pub fn visitor_for(issuer: &str, subject: &str) -> String {
    let mut h = Sha256::new();
    h.update(issuer.as_bytes());
    h.update([0]);
    h.update(subject.as_bytes());
    let encoded = URL_SAFE_NO_PAD.encode(h.finalize());
    format!("u{}", &encoded[..21])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_visitor_ids_are_stable_and_valid() {
        let a = visitor_for("https://id.example", "alice");
        assert_eq!(a, visitor_for("https://id.example", "alice"));
        assert_ne!(a, visitor_for("https://id.example", "bob"));
        assert_ne!(a, visitor_for("https://other.example", "alice"));
        assert!(wr_pass::validate_visitor_id(&a).is_ok());
        assert_eq!(a.len(), 22);
    }
}
