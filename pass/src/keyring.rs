//! The key ring: key id → HMAC secret, with one active key that signs.
//!
//! Configured as JSON, the same text for origin-queue (`WR_KEYS` / `WR_KEYS_FILE`) and
//! for the edge filter (`"keys"` in its plugin configuration):
//!
//! ```json
//! {"active": "k2", "keys": {"k1": "<base64>", "k2": "<base64>"}}
//! ```
//!
//! Every listed key verifies; only the active key signs. To rotate: add the new key,
//! deploy everywhere, make it active, and remove the old key once the longest-lived
//! token signed with it has expired.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::ids::validate_key_id;

/// Shortest accepted secret, in bytes (the HMAC-SHA256 output size).
pub const MIN_SECRET_BYTES: usize = 32;
/// Most keys one ring may hold (verification looks a key id up linearly).
const MAX_KEYS: usize = 16;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A validated set of signing keys. Its `Debug` output never shows a secret.
#[derive(Clone)]
pub struct KeyRing {
    active: usize,
    /// Key id and the HMAC state keyed with its secret, ready to be cloned per use.
    keys: Vec<(String, HmacSha256)>,
}

/// Everything wrong with a key ring configuration, one problem per entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRingError {
    /// Human-readable problems; never contains a secret.
    pub problems: Vec<String>,
}

impl fmt::Display for KeyRingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid key ring: {}", self.problems.join("; "))
    }
}

impl std::error::Error for KeyRingError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRingJson {
    active: String,
    keys: BTreeMap<String, String>,
}

impl KeyRing {
    /// Parses and validates the JSON form.
    pub fn from_json(text: &str) -> Result<KeyRing, KeyRingError> {
        let parsed: KeyRingJson = serde_json::from_str(text).map_err(|e| KeyRingError {
            // serde_json's message names the position, never the secret's value.
            problems: vec![format!("not the expected JSON object ({e})")],
        })?;
        Self::from_parts(&parsed.active, &parsed.keys)
    }

    /// Parses and validates an already-parsed JSON value (e.g. part of a larger config).
    pub fn from_json_value(value: &serde_json::Value) -> Result<KeyRing, KeyRingError> {
        let parsed = KeyRingJson::deserialize(value).map_err(|e| KeyRingError {
            problems: vec![format!("not the expected JSON object ({e})")],
        })?;
        Self::from_parts(&parsed.active, &parsed.keys)
    }

    /// Builds a ring from key id → base64 secret, checking every entry.
    pub fn from_parts(
        active: &str,
        keys: &BTreeMap<String, String>,
    ) -> Result<KeyRing, KeyRingError> {
        let mut problems = Vec::new();
        if keys.is_empty() {
            problems.push("\"keys\" is empty: at least one key is needed".to_owned());
        }
        if keys.len() > MAX_KEYS {
            problems.push(format!(
                "{} keys listed, at most {MAX_KEYS} allowed",
                keys.len()
            ));
        }
        let mut ring = Vec::new();
        for (id, secret_b64) in keys {
            if let Err(e) = validate_key_id(id) {
                problems.push(format!("key id {id:?} {e} (1-32 of [A-Za-z0-9_-])"));
                continue;
            }
            let secret = match decode_secret(secret_b64) {
                Some(s) => s,
                None => {
                    problems.push(format!("key {id:?}: secret is not valid base64"));
                    continue;
                }
            };
            if secret.len() < MIN_SECRET_BYTES {
                problems.push(format!(
                    "key {id:?}: secret is {} bytes, at least {MIN_SECRET_BYTES} are required",
                    secret.len()
                ));
                continue;
            }
            match HmacSha256::new_from_slice(&secret) {
                Ok(mac) => ring.push((id.clone(), mac)),
                Err(_) => problems.push(format!("key {id:?}: unusable secret")),
            }
        }
        let active_index = ring.iter().position(|(id, _)| id == active);
        if active_index.is_none() && !keys.contains_key(active) {
            problems.push(format!("active key {active:?} is not listed in \"keys\""));
        }
        match active_index {
            Some(active) if problems.is_empty() => Ok(KeyRing { active, keys: ring }),
            _ => Err(KeyRingError { problems }),
        }
    }

    /// The id of the key that signs new tokens.
    pub fn active_key_id(&self) -> &str {
        &self.keys[self.active].0
    }

    /// Every key id that verifies, in sorted order.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(id, _)| id.as_str())
    }

    pub(crate) fn active_mac(&self) -> (&str, HmacSha256) {
        let (id, mac) = &self.keys[self.active];
        (id, mac.clone())
    }

    pub(crate) fn mac_for(&self, key_id: &str) -> Option<HmacSha256> {
        self.keys
            .iter()
            .find(|(id, _)| id == key_id)
            .map(|(_, mac)| mac.clone())
    }

    /// Derives a per-purpose secret from the active key (HMAC of the label), for uses
    /// such as keyed hashing that must agree across processes sharing this ring.
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        let (_, mut mac) = self.active_mac();
        mac.update(b"wr-derive:");
        mac.update(label);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active_key_id())
            .field("keys", &self.key_ids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn decode_secret(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S32: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn parses_a_ring_and_hides_secrets() {
        let ring = KeyRing::from_json(&format!(
            r#"{{"active":"k2","keys":{{"k1":"{S32}","k2":"{S32}"}}}}"#
        ))
        .unwrap();
        assert_eq!(ring.active_key_id(), "k2");
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["k1", "k2"]);
        let debug = format!("{ring:?}");
        assert!(!debug.contains(S32) && !debug.contains("AAEC"), "{debug}");
    }

    #[test]
    fn reports_every_problem() {
        let err =
            KeyRing::from_json(r#"{"active":"k9","keys":{"k1":"c2hvcnQ=","b@d":"x","k3":"!!"}}"#)
                .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.problems.len(), 4, "{text}");
        assert!(text.contains("at least 32"), "{text}");
        assert!(text.contains("\"b@d\""), "{text}");
        assert!(text.contains("not valid base64"), "{text}");
        assert!(text.contains("\"k9\" is not listed"), "{text}");
    }

    #[test]
    fn rejects_unknown_fields_and_empty_rings() {
        assert!(KeyRing::from_json(r#"{"active":"k1","keys":{},"extra":1}"#).is_err());
        let err = KeyRing::from_json(r#"{"active":"k1","keys":{}}"#).unwrap_err();
        assert!(err.to_string().contains("empty"));
    }
}
