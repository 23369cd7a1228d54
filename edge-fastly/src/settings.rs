//! The adapter's settings, as a Fastly service keeps them. Plain Rust over two lookups
//! (the Config Store's and the Secret Store's), so it is tested natively:
//!
//! | store | name | key | meaning |
//! |---|---|---|---|
//! | Config Store | `wr_edge` | `config` | the edge configuration (JSON, as for every runtime); `keys` left out |
//! | Secret Store | `wr_edge_secrets` | `keys` | the key ring (JSON) |
//! | Config Store | `wr_edge` | `rate_limiter` | optional: Fastly's Edge Rate Limiter in front of the decision (JSON, see [`RateLimiterPolicy`]) |
//! | Config Store | `wr_edge` | `counters_log` | optional: the logging endpoint that receives the counters (one JSON line per request) |
//!
//! Backends: `origin` (the site) and `queue` (origin-queue), by those names.

use wr_edge_core::config::Config;

/// The Config Store the adapter reads.
pub const CONFIG_STORE: &str = "wr_edge";
/// The Secret Store holding the key ring.
pub const SECRET_STORE: &str = "wr_edge_secrets";
/// The Config Store key of the edge configuration.
pub const CONFIG_KEY: &str = "config";
/// The Secret Store key of the key ring.
pub const KEYS_KEY: &str = "keys";
/// The Config Store key of the rate limiter's policy.
pub const RATE_LIMITER_KEY: &str = "rate_limiter";
/// The Config Store key naming the counters' logging endpoint.
pub const COUNTERS_LOG_KEY: &str = "counters_log";
/// The backend of the site (admitted and bypass requests).
pub const ORIGIN_BACKEND: &str = "origin";
/// The backend of origin-queue (its public routes, and the session-end reports).
pub const QUEUE_BACKEND: &str = "queue";

/// Fastly's Edge Rate Limiter asked before the decision, keyed by the client address
/// (IPv6 by /64, as the core's own limit). Counted per POP by Fastly; a client over the
/// limit sits in the penalty box for `penalty_minutes` and gets the edge's own 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimiterPolicy {
    /// The average rate allowed over the window.
    pub requests_per_second: u32,
    /// The window the rate is averaged over: 1, 10 or 60 (what ERL offers).
    pub window_seconds: u32,
    /// How long a client over the limit is refused: 1 to 60 minutes (ERL's span).
    pub penalty_minutes: u32,
}

/// Everything the adapter needs, validated.
pub struct Settings {
    /// The edge configuration, key ring included.
    pub config: Config,
    /// The platform limiter in front, if configured.
    pub rate_limiter: Option<RateLimiterPolicy>,
    /// The logging endpoint for the counters, if configured.
    pub counters_log: Option<String>,
}

impl Settings {
    /// Reads and validates the settings: `config` looks a key up in the Config Store,
    /// `secret` in the Secret Store (each `Err` is a problem opening or reading the
    /// store, in words). Every problem is listed; no secret appears in one.
    pub fn from_stores(
        config: impl Fn(&str) -> Result<Option<String>, String>,
        secret: impl Fn(&str) -> Result<Option<Vec<u8>>, String>,
        now_secs: u64,
    ) -> Result<Settings, Vec<String>> {
        let mut problems = Vec::new();
        let edge = match config(CONFIG_KEY) {
            Ok(Some(text)) => serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| format!("{CONFIG_STORE}.{CONFIG_KEY} is not JSON: {e}"))
                .and_then(|v| {
                    v.is_object()
                        .then_some(v)
                        .ok_or_else(|| format!("{CONFIG_STORE}.{CONFIG_KEY} is not a JSON object"))
                })
                .map_err(|p| problems.push(p))
                .ok(),
            Ok(None) => {
                problems.push(format!("{CONFIG_STORE}.{CONFIG_KEY} is not set"));
                None
            }
            Err(why) => {
                problems.push(why);
                None
            }
        };
        let keys = match secret(KEYS_KEY) {
            // serde_json's message names a position, never the text itself.
            Ok(Some(bytes)) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .map_err(|e| problems.push(format!("{SECRET_STORE}.{KEYS_KEY} is not JSON: {e}")))
                .ok(),
            Ok(None) => {
                problems.push(format!("{SECRET_STORE}.{KEYS_KEY} is not set"));
                None
            }
            Err(why) => {
                problems.push(why);
                None
            }
        };
        let rate_limiter = match config(RATE_LIMITER_KEY) {
            Ok(Some(text)) => RateLimiterPolicy::parse(&text)
                .map_err(|p| problems.push(format!("{CONFIG_STORE}.{RATE_LIMITER_KEY}: {p}")))
                .ok(),
            Ok(None) => None,
            Err(why) => {
                problems.push(why);
                None
            }
        };
        let counters_log = match config(COUNTERS_LOG_KEY) {
            Ok(name) => name.filter(|n| !n.is_empty()),
            Err(why) => {
                problems.push(why);
                None
            }
        };
        // Without its key ring the configuration is not judged: that problem is listed.
        let config = edge.zip(keys).and_then(|(mut edge, keys)| {
            edge["keys"] = keys;
            Config::from_json_at(edge.to_string().as_bytes(), now_secs)
                .map_err(|p| problems.extend(p))
                .ok()
        });
        // A store that cannot be opened fails every key: say so once.
        let mut seen = std::collections::HashSet::new();
        problems.retain(|p| seen.insert(p.clone()));
        match config {
            Some(config) if problems.is_empty() => Ok(Settings {
                config,
                rate_limiter,
                counters_log,
            }),
            _ => Err(problems),
        }
    }
}

impl RateLimiterPolicy {
    /// Reads `{"requests_per_second": N, "window_seconds": 1|10|60, "penalty_minutes":
    /// 1..=60}` (window 10 and penalty 1 when left out); every field is checked.
    pub fn parse(text: &str) -> Result<RateLimiterPolicy, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let fields = value.as_object().ok_or("not a JSON object")?;
        if let Some(unknown) = fields.keys().find(|k| {
            !["requests_per_second", "window_seconds", "penalty_minutes"].contains(&k.as_str())
        }) {
            return Err(format!("unknown field {unknown:?}"));
        }
        let number = |name: &str, default: Option<u64>| -> Result<u64, String> {
            match fields.get(name) {
                None => default.ok_or_else(|| format!("{name} is required")),
                Some(v) => v
                    .as_u64()
                    .ok_or_else(|| format!("{name} must be a whole number, not {v}")),
            }
        };
        let requests_per_second = number("requests_per_second", None)?;
        if !(1..=1_000_000).contains(&requests_per_second) {
            return Err(format!(
                "requests_per_second must be 1 to 1000000, not {requests_per_second}"
            ));
        }
        let window_seconds = number("window_seconds", Some(10))?;
        if ![1, 10, 60].contains(&window_seconds) {
            return Err(format!(
                "window_seconds must be 1, 10 or 60, not {window_seconds}"
            ));
        }
        let penalty_minutes = number("penalty_minutes", Some(1))?;
        if !(1..=60).contains(&penalty_minutes) {
            return Err(format!(
                "penalty_minutes must be 1 to 60, not {penalty_minutes}"
            ));
        }
        Ok(RateLimiterPolicy {
            requests_per_second: requests_per_second as u32,
            window_seconds: window_seconds as u32,
            penalty_minutes: penalty_minutes as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &str =
        r#"{"active":"k1","keys":{"k1":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}}"#;
    const CONFIG: &str = r#"{"events":[{"id":"demo","protected_prefixes":["/reserve"]}]}"#;
    const NOW: u64 = 1_800_000_000;

    fn store<'a>(
        pairs: &'a [(&'a str, &'a str)],
    ) -> impl Fn(&str) -> Result<Option<String>, String> + 'a {
        move |key| {
            Ok(pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string()))
        }
    }

    fn secrets<'a>(keys: Option<&'a str>) -> impl Fn(&str) -> Result<Option<Vec<u8>>, String> + 'a {
        move |key| {
            Ok((key == KEYS_KEY)
                .then_some(keys)
                .flatten()
                .map(|k| k.as_bytes().to_vec()))
        }
    }

    #[test]
    fn the_configuration_and_the_key_ring_make_the_settings() {
        let s = Settings::from_stores(
            store(&[
                (CONFIG_KEY, CONFIG),
                (RATE_LIMITER_KEY, r#"{"requests_per_second": 20}"#),
                (COUNTERS_LOG_KEY, "wr_edge_counters"),
            ]),
            secrets(Some(KEYS)),
            NOW,
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(
            s.rate_limiter,
            Some(RateLimiterPolicy {
                requests_per_second: 20,
                window_seconds: 10,
                penalty_minutes: 1
            })
        );
        assert_eq!(s.counters_log.as_deref(), Some("wr_edge_counters"));
    }

    #[test]
    fn every_problem_is_listed_without_the_secret() {
        let problems = Settings::from_stores(
            store(&[(RATE_LIMITER_KEY, r#"{"requests_per_second": 0}"#)]),
            secrets(Some("{not json: s3cr3t")),
            NOW,
        )
        .err()
        .unwrap();
        let text = problems.join("\n");
        assert!(text.contains("wr_edge.config is not set"), "{text}");
        assert!(text.contains("wr_edge_secrets.keys is not JSON"), "{text}");
        assert!(text.contains("requests_per_second must be 1 to"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn a_missing_key_ring_is_a_problem() {
        let problems = Settings::from_stores(store(&[(CONFIG_KEY, CONFIG)]), secrets(None), NOW)
            .err()
            .unwrap();
        assert_eq!(problems, ["wr_edge_secrets.keys is not set"]);
    }

    #[test]
    fn a_store_that_cannot_be_opened_is_a_problem() {
        let problems = Settings::from_stores(
            |_| Err("the Config Store wr_edge cannot be opened".to_owned()),
            secrets(Some(KEYS)),
            NOW,
        )
        .err()
        .unwrap();
        assert!(
            problems.iter().all(|p| p.contains("cannot be opened")),
            "{problems:?}"
        );
    }

    #[test]
    fn the_rate_limiter_policy_is_checked_field_by_field() {
        assert!(RateLimiterPolicy::parse(
            r#"{"requests_per_second": 5, "window_seconds": 60, "penalty_minutes": 60}"#
        )
        .is_ok());
        for (text, problem) in [
            (
                r#"{"window_seconds": 10}"#,
                "requests_per_second is required",
            ),
            (
                r#"{"requests_per_second": 5, "window_seconds": 5}"#,
                "window_seconds must be 1, 10 or 60",
            ),
            (
                r#"{"requests_per_second": 5, "penalty_minutes": 61}"#,
                "penalty_minutes must be 1 to 60",
            ),
            (r#"{"requests_per_second": 2.5}"#, "must be a whole number"),
            (
                r#"{"requests_per_second": 5, "burst": 3}"#,
                "unknown field \"burst\"",
            ),
            ("[]", "not a JSON object"),
        ] {
            let got = RateLimiterPolicy::parse(text).unwrap_err();
            assert!(got.contains(problem), "{text}: {got}");
        }
    }
}
