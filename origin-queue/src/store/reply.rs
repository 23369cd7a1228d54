//! Reading script replies. A reply that does not have the shape its script promises is
//! [`StoreError::BadReply`](super::StoreError::BadReply): a bug, never read as a guess.

use redis::Value;

use super::event_config::{Prequeue, QueueMode};
use crate::eta::{Binding, Observed, SlotEnds};

/// An integer item.
pub fn int(v: &Value) -> Result<i64, String> {
    redis::from_redis_value(v).map_err(|e| e.to_string())
}

/// A non-negative integer item (negative values, which scripts use for "none", are 0).
pub fn count(v: &Value) -> Result<u64, String> {
    int(v).map(|n| n.max(0) as u64)
}

/// A text item.
pub fn text(v: &Value) -> Result<String, String> {
    redis::from_redis_value(v).map_err(|e| e.to_string())
}

/// A queueing mode item (`QueueMode::name`).
pub fn mode(v: &Value) -> Result<QueueMode, String> {
    let name = text(v)?;
    QueueMode::from_script(&name).ok_or_else(|| format!("a mode of {name:?}"))
}

/// A pre-queue state item (`event_prequeue` in `event.lua`).
pub fn prequeue(v: &Value) -> Result<Prequeue, String> {
    let name = text(v)?;
    Prequeue::from_script(&name).ok_or_else(|| format!("a pre-queue state of {name:?}"))
}

/// The part of a join or status reply shared by the whole batch (`event_batch_head` in
/// `event.lua`).
pub struct BatchHead {
    /// In line, for the whole event.
    pub waiting: u64,
    /// The ETA inputs (with the mode and the pre-queue state).
    pub observed: Observed,
    /// What the event asks of joins and passes now.
    pub guard: Guard,
}

/// What an event asks of joins and passes now: the proof of work and the cut.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Guard {
    /// Leading zero bits a join's proof of work must show (0: none asked).
    pub pow_difficulty: u8,
    /// Unix seconds before which every pass of the event is revoked (0: none): passes
    /// are minted no earlier.
    pub not_before: u64,
}

impl Guard {
    /// The issue time of a pass minted at `now_secs`: never before the cut.
    pub fn pass_issued_at(&self, now_secs: u64) -> u64 {
        now_secs.max(self.not_before)
    }
}

/// Items in the head.
const HEAD: usize = 20;
/// Items per visitor after the head.
const PER_VISITOR: usize = 3;

/// Reads a join or status reply for `asked` visitors: the head, and each visitor's
/// items read by `one`, in order. `None`: no such event.
pub fn batch<T>(
    reply: &[Value],
    asked: usize,
    now_ms: u64,
    one: impl Fn(&[Value]) -> Result<T, String>,
) -> Result<Option<(BatchHead, Vec<T>)>, String> {
    match reply.first().map(int).transpose()? {
        Some(0) => return Ok(None),
        Some(1) if reply.len() == HEAD + PER_VISITOR * asked => {}
        _ => return Err(format!("a batch reply of {} items", reply.len())),
    }
    let n = |i: usize| count(&reply[i]);
    let rate = text(&reply[5])?;
    let configured_rate = rate
        .parse()
        .map_err(|_| format!("a rate of {rate:?} in the batch head"))?;
    let opens_at_ms = n(8)?;
    let binding_name = text(&reply[11])?;
    let binding = Binding::from_script(&binding_name)
        .ok_or_else(|| format!("a binding of {binding_name:?} in the batch head"))?;
    let ends_text = text(&reply[14])?;
    let slot_ends = SlotEnds::parse(&ends_text)
        .ok_or_else(|| format!("slot ends of {ends_text:?} in the batch head"))?;
    let observed = Observed {
        last_1m: n(2)?,
        last_5m: n(3)?,
        last_15m: n(4)?,
        configured_rate,
        poll_cap_ms: n(6)?,
        observing_secs: observing_secs(n(7)?, now_ms),
        opens_in_secs: opens_at_ms.saturating_sub(now_ms) as f64 / 1000.0,
        paused: n(9)? == 1,
        silent: n(10)?,
        binding,
        max_active: n(12)?,
        session_secs: n(13)? as f64 / 1000.0,
        slot_ends,
        waiting: n(1)?,
        recent_joins: n(15)?,
        mode: mode(&reply[16])?,
        prequeue: prequeue(&reply[17])?,
    };
    let pow = n(18)?;
    let head = BatchHead {
        waiting: n(1)?,
        observed,
        guard: Guard {
            pow_difficulty: u8::try_from(pow)
                .map_err(|_| format!("a proof-of-work difficulty of {pow}"))?,
            not_before: n(19)?,
        },
    };
    let each = reply[HEAD..]
        .chunks_exact(PER_VISITOR)
        .map(one)
        .collect::<Result<Vec<T>, String>>()?;
    Ok(Some((head, each)))
}

/// Seconds since the first admission at `started_ms` (0 if none yet).
pub fn observing_secs(started_ms: u64, now_ms: u64) -> f64 {
    if started_ms == 0 {
        0.0
    } else {
        now_ms.saturating_sub(started_ms) as f64 / 1000.0
    }
}

/// A bulk string item, for tests.
#[cfg(test)]
pub fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}
