//! A [`Decision`] in the form every runtime applies: the header changes to make before
//! forwarding, or the whole local reply — and its JSON form, for hosts that are not Rust.
//!
//! Which headers the edge sets (identity for the backend, the wire settings for
//! origin-queue) and which it strips is decided here once; an adapter only carries the
//! changes out, in order, and fails closed if its host refuses one.

use std::borrow::Cow;

use serde::Serialize;
use smallvec::SmallVec;
use wr_pass::wire::WIRE_HEADER;

use crate::config::Config;
use crate::decision::{Action, Decision};
use crate::metrics::Counters;
use crate::session_end::Session;

/// One change to the request's headers before it is forwarded. Names (and the event
/// id) are borrowed from the configuration: applying an admission allocates only the
/// visitor id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum HeaderChange<'c> {
    /// Remove every header of this (lower-case) name.
    Remove {
        /// Header name.
        name: Cow<'c, str>,
    },
    /// Replace every header of this name by one with this value. When a `Set` is
    /// made, no header of its name is left: every client header that spells it (the
    /// exact name among them) is removed by a [`HeaderChange::Remove`] before it, so an
    /// adapter whose host adds more cheaply than it replaces may add.
    Set {
        /// Header name.
        name: Cow<'c, str>,
        /// Header value.
        value: Cow<'c, str>,
    },
}

/// The header changes of one request, inline up to three (what an admission or a
/// request to origin-queue makes without spoofed headers).
pub type HeaderChanges<'c> = SmallVec<[HeaderChange<'c>; 3]>;

/// What a runtime does with a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Outcome<'c> {
    /// Apply `changes` in order, then send the request on (to the backend, or to
    /// origin-queue when `to_queue`).
    Forward {
        /// Header changes, removals first.
        changes: HeaderChanges<'c>,
        /// True when the request goes to origin-queue.
        to_queue: bool,
        /// The admitted session: hand it back with the response's headers to
        /// [`crate::decision::Engine::respond`] (absent unless the backend may end
        /// sessions and a pass admitted the request).
        #[serde(skip_serializing_if = "Option::is_none")]
        session: Option<Session>,
        /// Counters to increment by one.
        counters: Counters,
    },
    /// Answer with this reply; the request goes no further.
    Reply {
        /// HTTP status.
        status: u32,
        /// Response headers.
        headers: Vec<(&'static str, String)>,
        /// Response body.
        body: String,
        /// Why a pass was refused (`missing`, `expired`, `bad_signature`, …), when
        /// that is why the request was answered.
        rejection: Option<&'static str>,
        /// Counters to increment by one.
        counters: Counters,
    },
}

impl<'c> Outcome<'c> {
    /// The outcome of `decision` under `config`.
    pub fn of(decision: Decision<'c>, config: &'c Config) -> Outcome<'c> {
        let counters = decision.counters;
        match decision.action {
            Action::Reply(reply) => Outcome::Reply {
                status: reply.status,
                headers: reply.headers,
                body: reply.body,
                rejection: counters.iter().find_map(|c| c.rejection()),
                counters,
            },
            Action::Forward {
                remove,
                identity,
                to_queue,
                session,
            } => Outcome::Forward {
                changes: header_changes(config, remove, identity, to_queue),
                to_queue,
                session: session.map(|s| *s),
                counters,
            },
        }
    }

    /// The JSON form (`{"action":"forward",...}` or `{"action":"reply",...}`).
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The header changes of a forwarded request: the client's spellings of the headers only
/// the edge sets are removed, then the identity of a verified pass is set for the
/// backend, and requests to origin-queue carry the edge's wire settings.
pub fn header_changes<'c>(
    config: &'c Config,
    remove: Vec<Vec<u8>>,
    identity: Option<(String, &'c str)>,
    to_queue: bool,
) -> HeaderChanges<'c> {
    let mut changes: HeaderChanges<'c> = remove
        .into_iter()
        .map(|name| HeaderChange::Remove {
            // Spoofed names are spellings of ASCII names: nothing is lost.
            name: Cow::Owned(String::from_utf8_lossy(&name).into_owned()),
        })
        .collect();
    if let Some((visitor, event)) = identity {
        changes.push(HeaderChange::Set {
            name: Cow::Borrowed(&config.visitor_header),
            value: Cow::Owned(visitor),
        });
        changes.push(HeaderChange::Set {
            name: Cow::Borrowed(&config.event_header),
            value: Cow::Borrowed(event),
        });
    }
    if to_queue {
        changes.push(HeaderChange::Set {
            name: Cow::Borrowed(WIRE_HEADER),
            value: Cow::Borrowed(&config.wire_header),
        });
    }
    changes
}

/// The header pairs the core reads, from the path and the headers as a runtime hands
/// them over: `:path` first (absent: the request is refused as not normalized), then
/// every header but pseudo-headers, which only the runtime's own path may supply.
pub fn header_pairs<N, V>(
    path: Option<String>,
    headers: impl IntoIterator<Item = (N, V)>,
) -> Vec<(Vec<u8>, Vec<u8>)>
where
    N: Into<Vec<u8>> + AsRef<[u8]>,
    V: Into<Vec<u8>>,
{
    let path = path.map(|p| (b":path".to_vec(), p.into_bytes()));
    path.into_iter()
        .chain(
            headers
                .into_iter()
                .filter(|(name, _)| name.as_ref().first() != Some(&b':'))
                .map(|(name, value)| (name.into(), value.into())),
        )
        .collect()
}

impl crate::decision::Engine {
    /// The whole job of an adapter in one call: reads the request from its header pairs
    /// (`:path` among them) and the peer address, decides at `now_ms` (unix
    /// milliseconds) with `store`, and returns the outcome to apply.
    pub fn outcome<H: AsRef<[u8]>>(
        &self,
        headers: &[(H, H)],
        source_address: Option<&[u8]>,
        now_ms: u64,
        store: &dyn crate::rate_limit::SharedStore,
    ) -> Outcome<'_> {
        let request = self.read_request(headers, source_address);
        Outcome::of(self.decide(&request, now_ms, store), self.config())
    }

    /// [`Engine::outcome`] with the peer address read only if a per-address limit
    /// applies (see [`Engine::decide_with_source`]).
    /// The headers are (name, value) pairs, read once, in order.
    pub fn outcome_with_source<'h>(
        &self,
        headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>,
        source: &dyn Fn() -> Option<Vec<u8>>,
        now_ms: u64,
        store: &dyn crate::rate_limit::SharedStore,
    ) -> Outcome<'_> {
        let request = self.read_pairs(headers, None);
        let decision = self.decide_with_source(&request, source, now_ms, store);
        Outcome::of(decision, self.config())
    }
}
