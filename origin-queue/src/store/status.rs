//! Where visitors stand (`status.lua`): a batch of polls of one event, claiming the
//! grant of each admitted visitor who has one.

use redis::Value;

use super::keys::{Bind, EventKey};
use super::reply::{self, Guard, Named, Shape};
use super::script::lua_script;
use super::{Store, StoreError};
use crate::event::Observed;

lua_script!(SCRIPT = "reply.lua", "event.lua", "seen.lua", "status.lua");

/// The keys `status.lua` expects, in order.
const KEYS: [EventKey; 9] = EventKey::LINE_AND_ADMISSIONS;

/// Result of a status call.
#[derive(Debug, PartialEq)]
pub enum Standing {
    /// In line at 0-based `rank`.
    Waiting { rank: u64 },
    /// In the opening draw, not run yet, among `entrants`.
    InDraw { entrants: u64 },
    /// Admitted; the session ends at `session_end_ms`. `claimed_now` is set when this
    /// call claimed the grant.
    Admitted {
        /// When the session (and the pass) ends.
        session_end_ms: u64,
        /// What the server knew at the claim.
        claimed_now: Option<Claimed>,
    },
    /// Not in line any more (abandoned, grant lapsed, session over, or left).
    Expired,
}

/// What the server knew about a visitor when it claimed the grant. (When the
/// visitor joined and the ETA it was shown travel in its signed ticket, not in Redis.)
#[derive(Debug, PartialEq, Clone, Copy)]
pub struct Claimed {
    /// When the admission step granted admission (ms).
    pub granted_ms: u64,
}

/// What one status script call found for a batch of visitors of one event.
#[derive(Debug, PartialEq)]
pub struct Statuses {
    /// One per visitor, in the order asked.
    pub standings: Vec<Standing>,
    /// In line, for the whole event.
    pub waiting: u64,
    /// The ETA inputs.
    pub observed: Observed,
    /// What the event asks of passes now (the cut).
    pub guard: Guard,
}

impl Store {
    /// Where each of `visitors` (of one event) stands, in one script call; claims the
    /// grant of each who has one. `None`: no such event. The line length and the ETA
    /// inputs are shared by the whole batch.
    pub async fn statuses(
        &self,
        event: &str,
        visitors: &[&str],
        now_ms: u64,
    ) -> Result<Option<Statuses>, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS).arg(now_ms);
        for visitor in visitors {
            call.arg(*visitor);
        }
        let reply: Vec<Value> = self.eval(call).await?;
        parse(&reply, visitors.len(), now_ms).map_err(StoreError::bad_reply)
    }
}

/// Each visitor's items after the head (`STATUS_VISITOR` in `status.lua`).
static VISITOR: std::sync::LazyLock<Shape> =
    std::sync::LazyLock::new(|| Shape::declared(include_str!("status.lua"), "STATUS_VISITOR"));

/// Reads the reply of `status.lua` for `asked` visitors.
fn parse(reply: &[Value], asked: usize, now_ms: u64) -> Result<Option<Statuses>, String> {
    let Some((head, standings)) = reply::batch(reply, asked, now_ms, &VISITOR, one)? else {
        return Ok(None);
    };
    Ok(Some(Statuses {
        standings,
        waiting: head.waiting,
        observed: head.observed,
        guard: head.guard,
    }))
}

/// One visitor's items: the state, the numbers it carries, when the grant claimed now
/// was made.
fn one(item: &Named) -> Result<Standing, String> {
    let granted = item.count("granted_ms")?;
    Ok(match item.text("state")?.as_str() {
        "waiting" => Standing::Waiting {
            rank: item.count("rank")?,
        },
        "prequeue" => Standing::InDraw {
            entrants: item.count("entrants")?,
        },
        "admitted" => Standing::Admitted {
            session_end_ms: item.count("session_end_ms")?,
            claimed_now: (granted > 0).then_some(Claimed {
                granted_ms: granted,
            }),
        },
        "expired" => Standing::Expired,
        other => return Err(format!("a status state of {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reply::bulk;
    use crate::store::{Prequeue, QueueMode};

    fn head() -> Vec<Value> {
        let int = Value::Int;
        reply::head_reply(&[
            ("found", int(1)),
            ("waiting", int(42)),
            ("n1", int(60)),
            ("n5", int(300)),
            ("n15", int(900)),
            ("rate", bulk("50")),
            ("poll_cap_ms", int(1000)),
            ("started_ms", int(5_000)),
            // Opened before `now`: nothing to add to the wait; paused.
            ("opens_at_ms", int(4_000)),
            ("paused", int(1)),
            // 7 silent in line; sessions limit admission: 100 at once, 10 minutes each.
            ("silent", int(7)),
            ("binding", bulk("slots")),
            ("max_active", int(100)),
            ("session_ms", int(600_000)),
            // 2 free now, then 10 sessions ending in each tenth of the session length.
            ("slot_ends", bulk("2,10,10,10,10,10,10,10,10,10,8")),
            ("recent_joins", int(30)),
            ("mode", bulk("random")),
            ("prequeue", bulk("")),
            // Proof of work of 12 bits asked; the cut at 1,700,000,000.
            ("pow_bits", int(12)),
            ("not_before", int(1_700_000_000)),
        ])
    }

    /// One visitor's items, as `status.lua` builds them: the numbers given, 0 for the
    /// others.
    fn visitor(state: &str, numbers: &[(&str, i64)]) -> Vec<Value> {
        let n = |name: &str| {
            Value::Int(
                numbers
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map_or(0, |(_, v)| *v),
            )
        };
        VISITOR.build(&[
            ("state", bulk(state)),
            ("rank", n("rank")),
            ("entrants", n("entrants")),
            ("session_end_ms", n("session_end_ms")),
            ("granted_ms", n("granted_ms")),
        ])
    }

    #[test]
    fn reads_each_visitor_of_a_batch_in_order() {
        let mut reply = head();
        reply.extend(visitor("waiting", &[("rank", 7)]));
        reply.extend(visitor(
            "admitted",
            &[("session_end_ms", 90_000), ("granted_ms", 80_000)],
        ));
        reply.extend(visitor("admitted", &[("session_end_ms", 95_000)]));
        reply.extend(visitor("expired", &[]));
        reply.extend(visitor("prequeue", &[("entrants", 12)]));
        let found = parse(&reply, 5, 65_000).unwrap().unwrap();
        assert_eq!(
            (found.observed.mode, found.observed.prequeue),
            (QueueMode::Random, Prequeue::None)
        );
        assert_eq!(found.waiting, 42);
        assert_eq!(found.observed.last_1m, 60);
        assert_eq!(found.observed.configured_rate, 50.0);
        assert_eq!(found.observed.poll_cap_ms, 1000);
        assert_eq!(found.observed.observing_secs, 60.0);
        assert_eq!(found.observed.opens_in_secs, 0.0);
        assert!(found.observed.paused);
        assert_eq!(found.observed.silent, 7);
        assert_eq!(found.observed.max_active, 100);
        assert_eq!(found.observed.session_secs, 600.0);
        assert_eq!(found.observed.slot_ends.0.map(|e| e[0]), Some(2));
        assert_eq!(found.observed.waiting, 42);
        assert_eq!(found.observed.recent_joins, 30);
        assert_eq!(found.observed.binding, crate::event::Binding::Slots);
        assert_eq!(
            found.standings,
            vec![
                Standing::Waiting { rank: 7 },
                Standing::Admitted {
                    session_end_ms: 90_000,
                    claimed_now: Some(Claimed { granted_ms: 80_000 })
                },
                Standing::Admitted {
                    session_end_ms: 95_000,
                    claimed_now: None
                },
                Standing::Expired,
                Standing::InDraw { entrants: 12 },
            ]
        );
    }

    #[test]
    fn no_event_is_none() {
        assert_eq!(parse(&[Value::Int(0)], 3, 0), Ok(None));
    }

    #[test]
    fn an_unknown_binding_is_a_bad_reply() {
        let mut reply = head();
        reply[reply::head_index("binding")] = bulk("moon");
        assert!(parse(&reply, 0, 0).is_err());
    }

    #[test]
    fn a_visitor_without_an_answer_is_a_bad_reply() {
        let short = [1, 0, 0, 0, 0].map(Value::Int).to_vec();
        assert!(parse(&short, 1, 0).is_err());
        assert!(parse(&[], 1, 0).is_err());
    }

    #[test]
    fn an_unknown_state_is_a_bad_reply() {
        let mut reply = head();
        reply.extend(visitor("gone", &[]));
        assert!(parse(&reply, 1, 0).is_err());
    }

    #[test]
    fn an_unreadable_rate_is_a_bad_reply() {
        let mut reply = head();
        reply[reply::head_index("rate")] = bulk("fast");
        assert!(parse(&reply, 0, 0).is_err());
    }
}
