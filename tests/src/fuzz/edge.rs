//! The targets that need no server: the pass and the ticket (`KeyRing::verify`), the
//! filter's configuration, and one request through the filter's decision.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use edge_filter::header_map::{parse_header_map, serialize_header_map};
use serde_json::json;
use wr_edge_core::config::Config;
use wr_edge_core::decision::{Action, Engine};
use wr_edge_core::rate_limit::{SharedStore, StoreError};
use wr_edge_core::request::{same_header_name, Request};
use wr_pass::{parse_unverified, Claims, Extension, KeyRing, TokenKind, Validity};

use super::{Target, Verdict};
use crate::fixtures::{filter_config, keys, now, pass_with};

/// Tokens of `kind` signed by the test key ring: the only ones that may verify.
fn signed_seeds(kind: TokenKind) -> Vec<Vec<u8>> {
    let ring = keys();
    let t = now();
    let mut with_ext = Claims::new("concert", "visitor-ext", t - 1, t + 600);
    with_ext.extensions.push(Extension {
        tag: 1,
        value: vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    });
    [
        Claims::new("concert", "alice", t - 1, t + 600),
        Claims::new("concert", "Zm9vYmFyYmF6cXV4cXV1eA", t - 60, t + 86_400),
        Claims::new("other", "bob", t - 1, t + 600),
        with_ext,
    ]
    .iter()
    .filter_map(|c| ring.mint(kind, c).ok())
    .map(String::into_bytes)
    .collect()
}

pub(super) fn token_target(name: &'static str, kind: TokenKind) -> Target {
    let ring: KeyRing = keys();
    let valid: HashSet<Vec<u8>> = signed_seeds(kind).into_iter().collect();
    let mut seeds: Vec<Vec<u8>> = valid.iter().cloned().collect();
    // A well-formed token from a key the ring does not hold, and the other kind.
    if let Ok(foreign) = KeyRing::from_json(crate::fixtures::FOREIGN_KEYS_JSON) {
        let t = now();
        seeds.extend(
            foreign
                .mint(kind, &Claims::new("concert", "mallory", t - 1, t + 600))
                .map(String::into_bytes),
        );
    }
    let other = match kind {
        TokenKind::Pass => TokenKind::Ticket,
        _ => TokenKind::Pass,
    };
    seeds.extend(signed_seeds(other));
    Target {
        name,
        seeds,
        check: Box::new(move |input| {
            let _ = parse_unverified(input);
            let t = now();
            let verdict = ring.verify(kind, input, Validity::at(t, 5), Some("concert"));
            let unscoped = ring.verify_signature(kind, input);
            match (verdict.is_ok() || unscoped.is_ok(), valid.contains(input)) {
                (false, _) => Verdict::Rejected,
                (true, true) => Verdict::Accepted,
                (true, false) => Verdict::FalseAccept,
            }
        }),
    }
}

pub(super) fn filter_config_target() -> Target {
    let seeds = vec![
        filter_config(json!({})).into_bytes(),
        filter_config(json!({
            "client_rate_limit": {"requests_per_second": 5, "burst": 10},
            "visitor_rate_limit": null,
            "queue_rate_limit": {"requests_per_second": 100, "burst": 100},
            "bypass_prefixes": ["/static/", "/favicon.ico"]
        }))
        .into_bytes(),
        b"{}".to_vec(),
        b"[]".to_vec(),
    ];
    Target {
        name: "filter-config",
        seeds,
        check: Box::new(|input| match Config::from_json(input) {
            Ok(config) => {
                // A configuration that loads must also run.
                let engine = Engine::new(config);
                let request = Request {
                    path: Some(b"/reserve"),
                    source_address: Some(b"127.0.0.1:5000"),
                    ..Request::default()
                };
                let _ = engine.decide(&request, now() * 1000, &MemoryStore::default());
                Verdict::Accepted
            }
            Err(_) => Verdict::Rejected,
        }),
    }
}

/// Inputs are serialized proxy-wasm header maps, as Envoy hands them to the filter.
pub(super) fn filter_request_target() -> Target {
    let passes = signed_seeds(TokenKind::Pass);
    let ring = keys();
    let t = now();
    let expired = pass_with(&ring, "concert", "late", t - 7200, t - 3600).into_bytes();
    let config = Config::from_json(filter_config(json!({})).as_bytes()).expect("test config");
    let engine = Engine::new(config);
    let map = |headers: &[(&[u8], &[u8])]| serialize_header_map(headers);
    let mut seeds = Vec::new();
    for pass in passes.iter().chain([&expired]) {
        let cookie = [b"theme=dark; wr_pass=".as_slice(), pass, b"; x=1"].concat();
        seeds.push(map(&[
            (b":method", b"GET"),
            (b":path", b"/reserve/seat?id=1"),
            (b"accept", b"text/html"),
            (b"cookie", &cookie),
            (b"x-wr-visitor", b"spoofed"),
            (b"X_WR_Event", b"spoofed"),
        ]));
    }
    seeds.push(map(&[(b":path", b"/v1/events/concert/join")]));
    seeds.push(map(&[(b":path", b"/static/app.js"), (b"cookie", b"a=b")]));
    seeds.push(map(&[(b":path", b"/reserve/../admin"), (b"cookie", b"")]));
    // Oversized headers, an empty host and the path overrides: each refused or stripped
    // for that request alone.
    let padding = vec![b'x'; 33 * 1024];
    seeds.push(map(&[
        (b":path", b"/v1/events/concert/status"),
        (b":authority", b""),
        (b"cookie", &padding),
    ]));
    seeds.push(map(&[
        (b":path", b"/static/app.js"),
        (b"host", b"a,b"),
        (b"x-original-url", b"/reserve"),
        (b"X-Rewrite-URL", b"/reserve"),
    ]));
    let valid: Vec<Vec<u8>> = passes;
    Target {
        name: "filter-request",
        seeds,
        check: Box::new(move |input| {
            let Some(headers) = parse_header_map(input) else {
                return Verdict::Rejected;
            };
            let request = engine.read_request(&headers, Some(b"10.1.2.3:4567"));
            let store = MemoryStore::default();
            let action = engine.decide(&request, now() * 1000, &store).action;
            if let Action::Forward { remove, .. } = &action {
                // Every spelling of a header only the filter may set is removed.
                let owned = engine.config().owned_headers();
                let kept = headers.iter().any(|(name, _)| {
                    owned.iter().any(|o| same_header_name(name, o))
                        && !remove.contains(&name.to_ascii_lowercase())
                });
                if kept {
                    return Verdict::FalseAccept;
                }
            }
            match action {
                Action::Forward {
                    identity: Some((visitor, event)),
                    ..
                } => {
                    // Admitted: some cookie must carry a validly signed pass for
                    // exactly this visitor and event.
                    let backed = valid.iter().any(|pass| {
                        request
                            .cookies
                            .iter()
                            .any(|c| c.windows(pass.len()).any(|w| w == pass.as_slice()))
                            && ring
                                .verify_signature(TokenKind::Pass, pass)
                                .is_ok_and(|c| c.visitor == visitor && c.event == event)
                    });
                    if backed {
                        Verdict::Accepted
                    } else {
                        Verdict::FalseAccept
                    }
                }
                _ => Verdict::Rejected,
            }
        }),
    }
}

/// Shared data in memory, for running the filter's decision natively.
#[derive(Default)]
struct MemoryStore {
    data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.data.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let mut data = self.data.borrow_mut();
        let current = data.get(key).map(|(_, c)| *c).unwrap_or(0);
        if cas != 0 && cas != current {
            return Err(StoreError::CasMismatch);
        }
        data.insert(key.to_owned(), (value.to_vec(), current + 1));
        Ok(())
    }
}
