//! Reading script replies. A reply that does not have the shape its script promises is
//! [`StoreError::BadReply`](super::StoreError::BadReply): a bug, never read as a guess.
//!
//! A reply of many items has a [`Shape`]: its items' names, in order, declared once in
//! the script's Lua text (`local NAME = {'a', 'b', …}`, built there by `reply_shaped` in
//! `reply.lua`) and read from that same text here, so that each side names every item
//! and neither counts positions.

use redis::Value;

use super::event_config::{Prequeue, QueueMode};
use crate::event::{Binding, Observed, SlotEnds};

/// The items of a reply by name: the list `local <NAME> = {'a', 'b', …}` in a script.
#[derive(Debug)]
pub struct Shape {
    names: Vec<&'static str>,
}

impl Shape {
    /// The list `name` declares in `lua` (a script's text, compiled in). Panics if the
    /// text declares no such list of quoted names: every shape is read by a unit test.
    pub fn declared(lua: &'static str, name: &str) -> Shape {
        let head = format!("local {name} = {{");
        let start = lua
            .find(&head)
            .unwrap_or_else(|| panic!("no `{head}` in the script"))
            + head.len();
        let end = start
            + lua[start..]
                .find('}')
                .unwrap_or_else(|| panic!("`{head}` is not closed"));
        let names: Vec<&'static str> = lua[start..end]
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.strip_prefix('\'')
                    .and_then(|i| i.strip_suffix('\''))
                    .unwrap_or_else(|| panic!("{name}: {item:?} is not a quoted name"))
            })
            .collect();
        assert!(!names.is_empty(), "{name} declares no item");
        Shape { names }
    }

    /// Items in a reply of this shape.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Where the item `name` is (for tests that alter one item).
    pub fn index(&self, name: &str) -> Result<usize, String> {
        self.names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| format!("no item {name:?} in the reply's shape"))
    }

    /// A reply of this shape from its items by name, as the script would build it
    /// (tests); panics on a name the shape lacks or a missing one, as the script would.
    #[cfg(test)]
    pub fn build(&self, values: &[(&str, Value)]) -> Vec<Value> {
        for (name, _) in values {
            self.index(name).unwrap();
        }
        assert_eq!(values.len(), self.len(), "every item, once");
        self.names
            .iter()
            .map(|name| {
                values
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| panic!("no value for {name}"))
            })
            .collect()
    }

    /// The items of `reply`, which must hold exactly this shape's number.
    pub fn read<'r>(&'r self, reply: &'r [Value]) -> Result<Named<'r>, String> {
        if reply.len() != self.len() {
            return Err(format!(
                "a reply of {} items, where its shape declares {}",
                reply.len(),
                self.len()
            ));
        }
        Ok(Named { shape: self, reply })
    }
}

/// A reply read through its [`Shape`]: items asked by name.
pub struct Named<'r> {
    shape: &'r Shape,
    reply: &'r [Value],
}

impl<'r> Named<'r> {
    /// The item `name`.
    pub fn item(&self, name: &str) -> Result<&'r Value, String> {
        Ok(&self.reply[self.shape.index(name)?])
    }

    /// The integer item `name`.
    pub fn int(&self, name: &str) -> Result<i64, String> {
        int(self.item(name)?).map_err(|e| format!("{name}: {e}"))
    }

    /// The non-negative integer item `name` (see [`count`]).
    pub fn count(&self, name: &str) -> Result<u64, String> {
        count(self.item(name)?).map_err(|e| format!("{name}: {e}"))
    }

    /// The text item `name`.
    pub fn text(&self, name: &str) -> Result<String, String> {
        text(self.item(name)?).map_err(|e| format!("{name}: {e}"))
    }
}

/// Whether a reply says "no such event": exactly `{0}`. Any other one-item reply is
/// malformed; a longer reply is left to its reader, which checks its `found` item.
pub fn no_event(reply: &[Value]) -> Result<bool, String> {
    match reply {
        [only] => match int(only)? {
            0 => Ok(true),
            other => Err(format!("a one-item reply of {other}")),
        },
        _ => Ok(false),
    }
}

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

/// The head's items (`BATCH_HEAD` in `event.lua`).
static HEAD: std::sync::LazyLock<Shape> =
    std::sync::LazyLock::new(|| Shape::declared(include_str!("event.lua"), "BATCH_HEAD"));

/// Where the head's item `name` is (for tests that alter one).
#[cfg(test)]
pub fn head_index(name: &str) -> usize {
    HEAD.index(name).expect("a head item")
}

/// A batch head from its items by name (tests).
#[cfg(test)]
pub fn head_reply(values: &[(&str, Value)]) -> Vec<Value> {
    HEAD.build(values)
}

/// Reads a join or status reply for `asked` visitors: the head, and each visitor's
/// items (a group of shape `visitor` each) read by name by `one`, in order. `None`: no
/// such event.
pub fn batch<T>(
    reply: &[Value],
    asked: usize,
    now_ms: u64,
    visitor: &Shape,
    one: impl Fn(&Named) -> Result<T, String>,
) -> Result<Option<(BatchHead, Vec<T>)>, String> {
    if no_event(reply)? {
        return Ok(None);
    }
    if reply.len() != HEAD.len() + visitor.len() * asked {
        return Err(format!("a batch reply of {} items", reply.len()));
    }
    let head = HEAD.read(&reply[..HEAD.len()])?;
    if head.int("found")? != 1 {
        return Err("a batch head that is not found = 1".into());
    }
    let n = |name: &str| head.count(name);
    let rate = head.text("rate")?;
    let configured_rate = rate
        .parse()
        .map_err(|_| format!("a rate of {rate:?} in the batch head"))?;
    let opens_at_ms = n("opens_at_ms")?;
    let binding_name = head.text("binding")?;
    let binding = Binding::from_script(&binding_name)
        .ok_or_else(|| format!("a binding of {binding_name:?} in the batch head"))?;
    let ends_text = head.text("slot_ends")?;
    let slot_ends = SlotEnds::parse(&ends_text)
        .ok_or_else(|| format!("slot ends of {ends_text:?} in the batch head"))?;
    let observed = Observed {
        last_1m: n("n1")?,
        last_5m: n("n5")?,
        last_15m: n("n15")?,
        configured_rate,
        poll_cap_ms: n("poll_cap_ms")?,
        observing_secs: observing_secs(n("started_ms")?, now_ms),
        opens_in_secs: opens_at_ms.saturating_sub(now_ms) as f64 / 1000.0,
        paused: n("paused")? == 1,
        silent: n("silent")?,
        binding,
        max_active: n("max_active")?,
        session_secs: n("session_ms")? as f64 / 1000.0,
        slot_ends,
        waiting: n("waiting")?,
        recent_joins: n("recent_joins")?,
        mode: mode(head.item("mode")?)?,
        prequeue: prequeue(head.item("prequeue")?)?,
    };
    let pow = n("pow_bits")?;
    let head = BatchHead {
        waiting: n("waiting")?,
        observed,
        guard: Guard {
            pow_difficulty: u8::try_from(pow)
                .map_err(|_| format!("a proof-of-work difficulty of {pow}"))?,
            not_before: n("not_before")?,
        },
    };
    let each = reply[HEAD.len()..]
        .chunks_exact(visitor.len())
        .map(|items| one(&visitor.read(items)?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lone_zero_is_no_event() {
        assert_eq!(no_event(&[Value::Int(0)]), Ok(true));
        assert_eq!(no_event(&[Value::Int(1), Value::Int(0)]), Ok(false));
        for malformed in [Value::Int(-1), Value::Int(1), bulk("x")] {
            assert!(
                no_event(std::slice::from_ref(&malformed)).is_err(),
                "{malformed:?}"
            );
        }
    }
}
