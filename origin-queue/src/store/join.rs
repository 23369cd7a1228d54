//! Joining the line (`join.lua`): a batch of visitors of one event, in arrival order.

use redis::Value;

use super::keys::{pow_used, Bind, EventKey, KEY_TTL_SECS};
use super::reply::{self, Guard, Named, Shape};
use super::script::lua_script;
use super::{Store, StoreError};
use crate::event::Observed;

lua_script!(SCRIPT = "reply.lua", "event.lua", "seen.lua", "join.lua");

/// The keys `join.lua` expects, in order (then the used challenges' records).
const KEYS: [EventKey; 12] = [
    EventKey::Cfg,
    EventKey::Seq,
    EventKey::Line,
    EventKey::SeenIndex,
    EventKey::SEEN[0],
    EventKey::SEEN[1],
    EventKey::SEEN[2],
    EventKey::Granted,
    EventKey::Active,
    EventKey::Stats,
    EventKey::DryLine,
    EventKey::Barred,
];

/// How long a used challenge is remembered: longer than it can be presented (its
/// lifetime and the clock-skew leeway allowed at most).
const USED_CHALLENGE_TTL_SECS: u64 =
    wr_pass::pow::CHALLENGE_TTL_SECS + wr_pass::wire::MAX_CLOCK_SKEW_SECONDS;

/// The work a join shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Work {
    /// None is needed: the visitor holds a valid ticket of the event (a place taken
    /// before, with whatever work was asked then).
    NotNeeded,
    /// None shown.
    None,
    /// A solved challenge of this difficulty, single-use by its salt (hex).
    Solved {
        /// The challenge's difficulty, which the solution meets.
        difficulty: u8,
        /// The challenge's salt, hex.
        salt_hex: String,
    },
}

/// One visitor's join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequest {
    /// Who joins.
    pub visitor: String,
    /// The work the join shows.
    pub work: Work,
}

/// Result of a join.
#[derive(Debug, PartialEq)]
pub enum Joined {
    /// In line at 0-based `rank`; `new_seq` is the arrival number if this call created
    /// the place.
    Waiting { rank: u64, new_seq: Option<u64> },
    /// In the pre-queue: a place in the opening draw, among `entrants` so far; `new_seq`
    /// is the entry number if this call created the entry.
    InDraw { entrants: u64, new_seq: Option<u64> },
    /// The pre-queue opens at `opens_at_ms`: nobody joins before.
    NotOpen { opens_at_ms: u64 },
    /// Already admitted: poll status to pick up the pass.
    Admitted,
    /// The event no longer takes visitors.
    Closed,
    /// The operator revoked this visitor's admission and barred them from joining
    /// again.
    Revoked,
    /// A new place needs a solved challenge of this difficulty (none was shown, or an
    /// easier one than asked now).
    PowRequired { difficulty: u8 },
    /// The challenge's solution has already taken a place.
    PowReplayed,
    /// No such event.
    NoEvent,
}

/// What one join script call found for a batch of visitors of one event.
#[derive(Debug, PartialEq)]
pub struct Joins {
    /// One per visitor, in the order asked.
    pub joined: Vec<Joined>,
    /// In line after the batch, for the whole event.
    pub waiting: u64,
    /// The ETA inputs.
    pub observed: Observed,
    /// What the event asks of joins and passes now.
    pub guard: Guard,
}

impl Store {
    /// Joins each of `visitors` (of one event, in arrival order) to the line, or finds
    /// the place it holds, in one script call. `None`: no such event. The line length
    /// (after the whole batch) and the ETA inputs are shared by the batch. With
    /// [`Store::with_join_replicas`], a new place is durable only after
    /// [`Store::confirm_placed`].
    pub async fn joins(
        &self,
        event: &str,
        joins: &[&JoinRequest],
        now_ms: u64,
    ) -> Result<Option<Joins>, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS)
            .arg(now_ms)
            .arg(KEY_TTL_SECS)
            .arg(USED_CHALLENGE_TTL_SECS);
        let mut used_keys = KEYS.len();
        for join in joins {
            let (work, used) = match &join.work {
                Work::NotNeeded => (-1, 0),
                Work::None => (0, 0),
                Work::Solved {
                    difficulty,
                    salt_hex,
                } => {
                    call.key(pow_used(event, salt_hex));
                    used_keys += 1;
                    (i64::from(*difficulty), used_keys)
                }
            };
            call.arg(&join.visitor).arg(work).arg(used);
        }
        let reply: Vec<Value> = self.eval(call).await?;
        parse(&reply, joins.len(), now_ms).map_err(StoreError::bad_reply)
    }
}

/// Each visitor's items after the head (`JOIN_VISITOR` in `join.lua`).
static VISITOR: std::sync::LazyLock<Shape> =
    std::sync::LazyLock::new(|| Shape::declared(include_str!("join.lua"), "JOIN_VISITOR"));

/// Reads the reply of `join.lua` for `asked` visitors.
fn parse(reply: &[Value], asked: usize, now_ms: u64) -> Result<Option<Joins>, String> {
    let Some((head, joined)) = reply::batch(reply, asked, now_ms, &VISITOR, one)? else {
        return Ok(None);
    };
    Ok(Some(Joins {
        joined,
        waiting: head.waiting,
        observed: head.observed,
        guard: head.guard,
    }))
}

/// One visitor's items: the state and the number it carries, the new arrival number.
fn one(item: &Named) -> Result<Joined, String> {
    let seq = item.count("new_seq")?;
    let new_seq = (seq > 0).then_some(seq);
    Ok(match item.text("state")?.as_str() {
        "waiting" => Joined::Waiting {
            rank: item.count("rank")?,
            new_seq,
        },
        "prequeue" => Joined::InDraw {
            entrants: item.count("entrants")?,
            new_seq,
        },
        "not_open" => Joined::NotOpen {
            opens_at_ms: item.count("opens_at_ms")?,
        },
        "admitted" => Joined::Admitted,
        "closed" => Joined::Closed,
        "revoked" => Joined::Revoked,
        "pow_required" => {
            let bits = item.count("pow_bits")?;
            Joined::PowRequired {
                difficulty: u8::try_from(bits)
                    .map_err(|_| format!("a difficulty of {bits} asked"))?,
            }
        }
        "pow_replayed" => Joined::PowReplayed,
        other => return Err(format!("a join state of {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reply::bulk;
    use crate::store::{Prequeue, QueueMode};

    fn reply() -> Vec<Value> {
        let int = Value::Int;
        let mut reply = crate::store::reply::head_reply(&[
            ("found", int(1)),
            ("waiting", int(3)),
            ("n1", int(0)),
            ("n5", int(0)),
            ("n15", int(0)),
            ("rate", bulk("50")),
            ("poll_cap_ms", int(1000)),
            ("started_ms", int(0)),
            // Opens 90 s after `now`.
            ("opens_at_ms", int(100_000)),
            ("paused", int(0)),
            ("silent", int(0)),
            ("binding", bulk("")),
            ("max_active", int(100)),
            ("session_ms", int(600_000)),
            ("slot_ends", bulk("")),
            ("recent_joins", int(0)),
            ("mode", bulk("fifo")),
            ("prequeue", bulk("open")),
            ("pow_bits", int(0)),
            ("not_before", int(0)),
        ]);
        for (state, number, new_seq) in [
            ("waiting", "rank", 12),
            ("waiting", "rank", 0),
            ("admitted", "", 0),
            ("closed", "", 0),
            ("prequeue", "entrants", 13),
            ("not_open", "opens_at_ms", 0),
        ] {
            reply.extend(visitor(state, number, new_seq));
        }
        reply
    }

    /// One visitor's items, as `join.lua` builds them: `number` (an item's name) holds
    /// the state's number (1 for a rank, 40 entrants, 5,000 ms), the others 0.
    fn visitor(state: &str, number: &str, new_seq: i64) -> Vec<Value> {
        let value = |name: &str| match name {
            _ if name != number => Value::Int(0),
            "rank" => Value::Int(1),
            "entrants" => Value::Int(40),
            _ => Value::Int(5_000),
        };
        VISITOR.build(&[
            ("state", bulk(state)),
            ("rank", value("rank")),
            ("entrants", value("entrants")),
            ("opens_at_ms", value("opens_at_ms")),
            ("pow_bits", value("pow_bits")),
            ("new_seq", Value::Int(new_seq)),
        ])
    }

    #[test]
    fn reads_each_join_of_a_batch_in_order() {
        let found = parse(&reply(), 6, 10_000).unwrap().unwrap();
        assert_eq!(found.waiting, 3);
        assert_eq!(
            (found.observed.mode, found.observed.prequeue),
            (QueueMode::Fifo, Prequeue::Open)
        );
        assert_eq!(found.observed.configured_rate, 50.0);
        assert_eq!(found.observed.opens_in_secs, 90.0);
        assert!(!found.observed.paused);
        assert_eq!(
            found.joined,
            vec![
                Joined::Waiting {
                    rank: 1,
                    new_seq: Some(12)
                },
                Joined::Waiting {
                    rank: 1,
                    new_seq: None
                },
                Joined::Admitted,
                Joined::Closed,
                Joined::InDraw {
                    entrants: 40,
                    new_seq: Some(13)
                },
                Joined::NotOpen { opens_at_ms: 5_000 },
            ]
        );
    }

    #[test]
    fn no_event_is_none() {
        assert_eq!(parse(&[Value::Int(0)], 2, 0), Ok(None));
    }

    #[test]
    fn a_visitor_without_an_answer_is_a_bad_reply() {
        assert!(parse(&reply(), 7, 0).is_err());
    }

    #[test]
    fn an_unknown_state_is_a_bad_reply() {
        let mut reply = reply();
        // The first visitor's state: after the head, which the six visitors follow.
        let first = reply.len() - 6 * VISITOR.len();
        reply[first + VISITOR.index("state").unwrap()] = bulk("gone");
        assert!(parse(&reply, 6, 0).is_err());
    }
}
