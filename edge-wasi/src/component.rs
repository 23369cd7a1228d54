//! The bindings and the adapter.

use wr_edge_core::config::Config;
use wr_edge_core::decision::Engine;
use wr_edge_core::outcome::{header_pairs, HeaderChange, Outcome};
use wr_edge_core::rate_limit::{SharedStore, StoreError};
use wr_edge_core::session_end::{ResponseChange, ResponseOutcome, Session as CoreSession};

wit_bindgen::generate!({
    path: "../wit",
    world: "decider",
});

use exports::waiting_room::edge::decide::{Guest, GuestEdge};
use waiting_room::edge::host;
use waiting_room::edge::types::{
    Action, Decision, Forward, HeaderChange as WitChange, Rejection, Reply, Report, Request,
    ResponseChange as WitResponseChange, ResponseDecision, Session,
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

    fn respond(
        &self,
        session: Option<Session>,
        headers: Vec<(String, String)>,
    ) -> ResponseDecision {
        let session = session.map(|s| CoreSession {
            event: s.event,
            pass: s.pass,
        });
        let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
        let outcome = self
            .engine
            .respond(session.as_ref(), pairs, host::now_ms(), &HostState);
        response_to_wit(outcome)
    }
}

fn response_to_wit(outcome: ResponseOutcome) -> ResponseDecision {
    ResponseDecision {
        changes: outcome
            .changes
            .into_iter()
            .map(|c| match c {
                ResponseChange::Remove { name } => WitResponseChange::Remove(name.into_owned()),
                ResponseChange::Add { name, value } => {
                    WitResponseChange::Add((name.into_owned(), value.into_owned()))
                }
            })
            .collect(),
        report: outcome.report.map(|r| Report {
            path: r.path,
            body: r.body,
            timeout_ms: r.timeout_ms,
        }),
        counters: outcome
            .counters
            .iter()
            .map(|c| c.name().to_owned())
            .collect(),
    }
}

fn to_wit(outcome: Outcome) -> Decision {
    match outcome {
        Outcome::Forward {
            changes,
            to_queue,
            session,
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
                session: session.map(|s| Session {
                    event: s.event,
                    pass: s.pass,
                }),
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
        "revoked" => Rejection::Revoked,
        "session_ended" => Rejection::SessionEnded,
        _ => return None,
    })
}

export!(Component);
