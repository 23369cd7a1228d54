//! Joining the line (`join.lua`): a batch of visitors of one event, in arrival order.

use redis::Value;

use super::keys::{Bind, EventKey, KEY_TTL_SECS};
use super::reply::{self, count, int, text};
use super::script::lua_script;
use super::{Store, StoreError};
use crate::eta::Observed;

lua_script!(SCRIPT = "event.lua", "seen.lua", "join.lua");

/// The keys `join.lua` expects, in order.
const KEYS: [EventKey; 11] = [
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
];

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
        visitors: &[&str],
        now_ms: u64,
    ) -> Result<Option<Joins>, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS).arg(now_ms).arg(KEY_TTL_SECS);
        for visitor in visitors {
            call.arg(*visitor);
        }
        let reply: Vec<Value> = self.eval(call).await?;
        parse(&reply, visitors.len(), now_ms).map_err(StoreError::bad_reply)
    }
}

/// Reads the reply of `join.lua` for `asked` visitors.
fn parse(reply: &[Value], asked: usize, now_ms: u64) -> Result<Option<Joins>, String> {
    let Some((head, joined)) = reply::batch(reply, asked, now_ms, one)? else {
        return Ok(None);
    };
    Ok(Some(Joins {
        joined,
        waiting: head.waiting,
        observed: head.observed,
    }))
}

/// One visitor's items: state, rank, new arrival number.
fn one(items: &[Value]) -> Result<Joined, String> {
    let seq = count(&items[2])?;
    Ok(match text(&items[0])?.as_str() {
        "waiting" => Joined::Waiting {
            rank: int(&items[1])?.max(0) as u64,
            new_seq: (seq > 0).then_some(seq),
        },
        "prequeue" => Joined::InDraw {
            entrants: count(&items[1])?,
            new_seq: (seq > 0).then_some(seq),
        },
        "not_open" => Joined::NotOpen {
            opens_at_ms: count(&items[1])?,
        },
        "admitted" => Joined::Admitted,
        "closed" => Joined::Closed,
        other => return Err(format!("a join state of {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reply::bulk;
    use crate::store::{Prequeue, QueueMode};

    fn reply() -> Vec<Value> {
        let mut reply = [1, 3, 0, 0, 0].map(Value::Int).to_vec();
        // Opens 90 s after `now`.
        reply.extend([
            bulk("50"),
            Value::Int(1000),
            Value::Int(0),
            Value::Int(100_000),
            Value::Int(0),
            Value::Int(0),
            bulk(""),
            Value::Int(100),
            Value::Int(600_000),
            bulk(""),
            Value::Int(0),
            bulk("fifo"),
            bulk("open"),
        ]);
        reply.extend([bulk("waiting"), Value::Int(1), Value::Int(12)]);
        reply.extend([bulk("waiting"), Value::Int(1), Value::Int(0)]);
        reply.extend([bulk("admitted"), Value::Int(-1), Value::Int(0)]);
        reply.extend([bulk("closed"), Value::Int(-1), Value::Int(0)]);
        reply.extend([bulk("prequeue"), Value::Int(40), Value::Int(13)]);
        reply.extend([bulk("not_open"), Value::Int(5_000), Value::Int(0)]);
        reply
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
        reply[18] = bulk("gone");
        assert!(parse(&reply, 6, 0).is_err());
    }
}
