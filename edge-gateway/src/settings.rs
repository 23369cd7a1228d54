//! The gateway's settings, from environment variables (wasi:cli/environment; e.g.
//! `wasmtime serve --env NAME=value`):
//!
//! | variable | meaning |
//! |---|---|
//! | `WR_EDGE_CONFIG` | the edge configuration (JSON, as for every runtime), `keys` may be left out |
//! | `WR_EDGE_KEYS` | the key ring (JSON); required unless the configuration has `keys` |
//! | `WR_ORIGIN` | where admitted and bypass requests go: `http://host:port` |
//! | `WR_QUEUE_ORIGIN` | origin-queue: `http://host:port` |
//! | `WR_CLIENT_ADDRESS_HEADER` | a header the platform sets and overwrites with the client address (wasi:http gives a component no peer address); unset: none |

use wr_edge_core::config::Config;

/// Where a request is sent: `http` or `https`, and `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `true` for `https`.
    pub https: bool,
    /// `host[:port]`.
    pub authority: String,
}

/// Everything the gateway needs, validated.
pub struct Settings {
    /// The edge configuration.
    pub config: Config,
    /// The origin.
    pub origin: Origin,
    /// origin-queue.
    pub queue_origin: Origin,
    /// The platform's client-address header, lower-case.
    pub client_address_header: Option<String>,
}

impl Settings {
    /// Reads and validates the settings from `var` (an environment lookup); every
    /// problem is listed, and no secret appears in a problem.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Settings, Vec<String>> {
        let mut problems = Vec::new();
        let mut config: serde_json::Value = match var("WR_EDGE_CONFIG") {
            None => {
                problems.push("WR_EDGE_CONFIG is not set".to_owned());
                serde_json::Value::Null
            }
            Some(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                problems.push(format!("WR_EDGE_CONFIG is not JSON: {e}"));
                serde_json::Value::Null
            }),
        };
        if let Some(keys) = var("WR_EDGE_KEYS") {
            match serde_json::from_str::<serde_json::Value>(&keys) {
                Ok(keys) if config.is_object() => config["keys"] = keys,
                Ok(_) => {}
                // serde_json's message names a position, never the text itself.
                Err(e) => problems.push(format!("WR_EDGE_KEYS is not JSON: {e}")),
            }
        }
        let origin = origin_of(&var, "WR_ORIGIN", &mut problems);
        let queue_origin = origin_of(&var, "WR_QUEUE_ORIGIN", &mut problems);
        let config = if config.is_object() {
            Config::from_json_at(config.to_string().as_bytes(), now_ms() / 1000)
                .map_err(|p| problems.extend(p))
                .ok()
        } else {
            None
        };
        match (config, origin, queue_origin) {
            (Some(config), Some(origin), Some(queue_origin)) if problems.is_empty() => {
                Ok(Settings {
                    config,
                    origin,
                    queue_origin,
                    client_address_header: var("WR_CLIENT_ADDRESS_HEADER")
                        .filter(|h| !h.is_empty())
                        .map(|h| h.to_ascii_lowercase()),
                })
            }
            _ => Err(problems),
        }
    }
}

fn origin_of(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    problems: &mut Vec<String>,
) -> Option<Origin> {
    let Some(text) = var(name) else {
        problems.push(format!("{name} is not set"));
        return None;
    };
    match parse_origin(&text) {
        Some(origin) => Some(origin),
        None => {
            problems.push(format!(
                "{name} must be http://host[:port] or https://host[:port] with no path, not {text:?}"
            ));
            None
        }
    }
}

/// `http://host[:port]` or `https://…`, nothing after the authority but one `/`.
pub fn parse_origin(text: &str) -> Option<Origin> {
    let (https, rest) = if let Some(rest) = text.strip_prefix("http://") {
        (false, rest)
    } else {
        (true, text.strip_prefix("https://")?)
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let valid = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    valid.then(|| Origin {
        https,
        authority: authority.to_owned(),
    })
}

/// Unix milliseconds by the host's clock (0 without one: every pass then looks expired,
/// failing closed).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &str =
        r#"{"active":"k1","keys":{"k1":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}}"#;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn a_complete_environment_is_accepted() {
        let s = Settings::from_env(env(&[
            (
                "WR_EDGE_CONFIG",
                r#"{"events":[{"id":"demo","protected_prefixes":["/reserve"]}]}"#,
            ),
            ("WR_EDGE_KEYS", KEYS),
            ("WR_ORIGIN", "http://127.0.0.1:3000"),
            ("WR_QUEUE_ORIGIN", "http://127.0.0.1:8081/"),
            ("WR_CLIENT_ADDRESS_HEADER", "CF-Connecting-IP"),
        ]))
        .unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(s.queue_origin.authority, "127.0.0.1:8081");
        assert!(!s.origin.https);
        assert_eq!(s.client_address_header.as_deref(), Some("cf-connecting-ip"));
    }

    #[test]
    fn every_problem_is_listed_without_the_secret() {
        let problems = Settings::from_env(env(&[
            ("WR_EDGE_CONFIG", r#"{"events":[]}"#),
            ("WR_EDGE_KEYS", "{not json: s3cr3t"),
            ("WR_ORIGIN", "ftp://x"),
        ]))
        .err()
        .unwrap();
        let text = problems.join("\n");
        assert!(text.contains("WR_EDGE_KEYS is not JSON"), "{text}");
        assert!(text.contains("WR_ORIGIN must be"), "{text}");
        assert!(text.contains("WR_QUEUE_ORIGIN is not set"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn origins_have_no_path() {
        assert_eq!(
            parse_origin("https://shop.example"),
            Some(Origin {
                https: true,
                authority: "shop.example".into()
            })
        );
        assert_eq!(parse_origin("http://a/b"), None);
        assert_eq!(parse_origin("http://"), None);
        assert_eq!(parse_origin("shop.example"), None);
    }
}
