//! The bindings and the adapter.

use wr_edge_core::config::Config;
use wr_edge_core::decision::Engine;
use wr_edge_core::outcome::{header_pairs, HeaderChange, Outcome};
use wr_edge_core::rate_limit::{SharedStore, StoreError};

wit_bindgen::generate!({
    path: "../wit",
    world: "decider",
});

use exports::waiting_room::edge::decide::{Guest, GuestEdge};
use waiting_room::edge::host;
use waiting_room::edge::types::{
    Action, Decision, Forward, HeaderChange as WitChange, Rejection, Reply, Request,
};

struct Component;

/// A validated configuration.
struct Edge {
    engine: Engine,
}

/// The host's state, through the world's imports.
struct HostState;

impl SharedStore for HostState {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        host::state_get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        host::state_set(key, value, cas).map_err(|e| match e {
            host::StateError::CasMismatch => StoreError::CasMismatch,
            host::StateError::Failed => StoreError::Other,
        })
    }
}

impl Guest for Component {
    type Edge = Edge;
}

impl GuestEdge for Edge {
    fn create(config: String) -> Result<exports::waiting_room::edge::decide::Edge, Vec<String>> {
        let config = Config::from_json(config.as_bytes())?;
        Ok(exports::waiting_room::edge::decide::Edge::new(Edge {
            engine: Engine::new(config),
        }))
    }

    fn decide(&self, request: Request) -> Decision {
        let headers = header_pairs(request.path, request.headers);
        let source = request.source.as_deref().map(str::as_bytes);
        let outcome = self
            .engine
            .outcome(&headers, source, host::now_ms(), &HostState);
        to_wit(outcome)
    }
}

fn to_wit(outcome: Outcome) -> Decision {
    match outcome {
        Outcome::Forward {
            changes,
            to_queue,
            counters,
        } => Decision {
            action: Action::Forward(Forward {
                changes: changes
                    .into_iter()
                    .map(|c| match c {
                        HeaderChange::Remove { name } => WitChange::Remove(name.into_owned()),
                        HeaderChange::Set { name, value } => {
                            WitChange::Set((name.into_owned(), value.into_owned()))
                        }
                    })
                    .collect(),
                to_queue,
            }),
            counters: counters.iter().map(|c| c.name().to_owned()).collect(),
        },
        Outcome::Reply {
            status,
            headers,
            body,
            rejection,
            counters,
        } => Decision {
            action: Action::Reply(Reply {
                status: u16::try_from(status).unwrap_or(500),
                headers: headers
                    .into_iter()
                    .map(|(n, v)| (n.to_owned(), v))
                    .collect(),
                body,
                rejection: rejection.and_then(rejection_to_wit),
            }),
            counters: counters.iter().map(|c| c.name().to_owned()).collect(),
        },
    }
}

fn rejection_to_wit(name: &str) -> Option<Rejection> {
    Some(match name {
        "missing" => Rejection::Missing,
        "malformed" => Rejection::Malformed,
        "unsupported_version" => Rejection::UnsupportedVersion,
        "unknown_key" => Rejection::UnknownKey,
        "bad_signature" => Rejection::BadSignature,
        "expired" => Rejection::Expired,
        "not_yet_valid" => Rejection::NotYetValid,
        "wrong_event" => Rejection::WrongEvent,
        "lifetime_too_long" => Rejection::LifetimeTooLong,
        _ => return None,
    })
}

export!(Component);
