//! The opening draw (`draw.lua`) and reading its public record and order.

use redis::Value;
use serde::Serialize;

use super::keys::{Bind, EventKey, KEY_TTL_SECS};
use super::reply::{no_event, Shape};
use super::script::lua_script;
use super::{Store, StoreError};

lua_script!(SCRIPT = "reply.lua", "event.lua", "draw.lua");

/// The keys `draw.lua` expects, in order.
const KEYS: [EventKey; 9] = [
    EventKey::Cfg,
    EventKey::Line,
    EventKey::SeenIndex,
    EventKey::SEEN[0],
    EventKey::SEEN[1],
    EventKey::SEEN[2],
    EventKey::Draw,
    EventKey::DrawOrder,
    EventKey::Stats,
];

/// Most entrants one draw call keys or places.
pub const DRAW_CHUNK: u64 = 10_000;

/// The bound on one draw call (a chunk takes about 0.1 s on an idle shard).
const DRAW_CHUNK_BOUND: std::time::Duration = std::time::Duration::from_secs(2);

/// Length of an entry's sort key in the order set (hex SHA-1).
const KEY_HEX: usize = 40;

/// What a draw call did.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Drew {
    /// This call did one chunk of the draw (`so_far` entrants keyed, then placed): call
    /// again.
    InProgress { so_far: u64 },
    /// This call drew `entrants` places.
    Drawn { entrants: u64 },
    /// The draw had already been made.
    Done,
    /// Not time yet, or the event has no pre-queue.
    NotDue,
}

/// The public record of an event's draw.
#[derive(Debug, Serialize, PartialEq)]
pub struct DrawRecord {
    /// SHA-256 (hex) of the seed's hex text, published from the event's creation.
    pub commitment: String,
    /// When the seed was committed to (ms): before anybody could join.
    pub committed_at_ms: u64,
    /// The seed (64 hex digits), only once the draw has run.
    pub seed: Option<String>,
    /// When the draw ran (ms).
    pub drawn_at_ms: Option<u64>,
    /// Entrants given a place.
    pub entrants: Option<u64>,
    /// Draws made (1 once drawn, whatever the number of instances and retries).
    pub draws: u64,
}

/// Most entries one page of the published order holds.
pub const MAX_ORDER_PAGE: u64 = 10_000;

impl Store {
    /// Does one chunk of the opening draw, if it is due: at most [`DRAW_CHUNK`]
    /// entrants, about 0.1 s of the shard's time (BENCHMARKS.md). `None`: no such event.
    pub async fn draw(&self, event: &str, now_ms: u64) -> Result<Option<Drew>, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS)
            .arg(now_ms)
            .arg(KEY_TTL_SECS)
            .arg(DRAW_CHUNK);
        let mut c = self.link.get();
        // A chunk takes longer than most calls: bounded, but not by the usual timeout.
        let bound = self.timeout().max(DRAW_CHUNK_BOUND);
        let reply: Value = self
            .bounded_by(bound, async move { call.invoke_async(&mut c).await })
            .await?;
        let items: Vec<Value> =
            redis::from_owned_redis_value(reply).map_err(StoreError::bad_reply)?;
        parse_drew(&items).map_err(StoreError::bad_reply)
    }

    /// The public record of `event`'s draw; `None`: no such event (or no record).
    pub async fn draw_record(&self, event: &str) -> Result<Option<DrawRecord>, StoreError> {
        let key = EventKey::Draw.of(event);
        let mut c = self.link.get();
        let fields: Vec<Option<String>> = self
            .bounded(async move {
                redis::cmd("HMGET")
                    .arg(key)
                    .arg(&[
                        "commitment",
                        "committed_at_ms",
                        "seed",
                        "drawn_at_ms",
                        "entrants",
                        "draws",
                    ])
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let [commitment, committed_at, seed, drawn_at, entrants, draws] =
            <[Option<String>; 6]>::try_from(fields)
                .map_err(|f| StoreError::bad_reply(format!("HMGET gave {} fields", f.len())))?;
        let Some(commitment) = commitment else {
            return Ok(None);
        };
        let number = |v: Option<String>| -> Result<Option<u64>, StoreError> {
            v.map(|t| {
                t.parse()
                    .map_err(|_| StoreError::bad_reply(format!("a draw number of {t:?}")))
            })
            .transpose()
        };
        Ok(Some(DrawRecord {
            commitment,
            committed_at_ms: number(committed_at)?.unwrap_or(0),
            seed,
            drawn_at_ms: number(drawn_at)?,
            entrants: number(entrants)?,
            draws: number(draws)?.unwrap_or(0),
        }))
    }

    /// Entrant ids at places `offset + 1 ..= offset + limit` of the drawn order (at most
    /// [`MAX_ORDER_PAGE`]).
    pub async fn draw_order(
        &self,
        event: &str,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<String>, StoreError> {
        let key = EventKey::DrawOrder.of(event);
        let last = offset + limit.clamp(1, MAX_ORDER_PAGE) - 1;
        let mut c = self.link.get();
        let members: Vec<String> = self
            .bounded(async move {
                redis::cmd("ZRANGE")
                    .arg(key)
                    .arg(offset)
                    .arg(last)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        members
            .into_iter()
            .map(|m| {
                m.get(KEY_HEX..)
                    .map(str::to_owned)
                    .ok_or_else(|| StoreError::bad_reply(format!("a draw entry of {m:?}")))
            })
            .collect()
    }
}

/// The items of a draw's reply (`DRAW_REPLY` in `draw.lua`).
static REPLY: std::sync::LazyLock<Shape> =
    std::sync::LazyLock::new(|| Shape::declared(include_str!("draw.lua"), "DRAW_REPLY"));

/// Reads the reply of `draw.lua`.
fn parse_drew(reply: &[Value]) -> Result<Option<Drew>, String> {
    if no_event(reply)? {
        return Ok(None);
    }
    let drew = REPLY.read(reply)?;
    if drew.count("found")? != 1 {
        return Err(format!("a draw reply of {reply:?}"));
    }
    Ok(Some(match drew.text("state")?.as_str() {
        "drawn" => Drew::Drawn {
            entrants: drew.count("entrants")?,
        },
        "drawing" => Drew::InProgress {
            so_far: drew.count("entrants")?,
        },
        "done" => Drew::Done,
        "not_due" => Drew::NotDue,
        other => return Err(format!("a draw result of {other:?}")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reply::bulk;

    /// A reply as `draw.lua` builds it.
    fn drew(state: &str, entrants: i64) -> Vec<Value> {
        REPLY.build(&[
            ("found", Value::Int(1)),
            ("state", bulk(state)),
            ("entrants", Value::Int(entrants)),
        ])
    }

    #[test]
    fn reads_what_the_draw_did() {
        assert_eq!(
            parse_drew(&drew("drawn", 7)),
            Ok(Some(Drew::Drawn { entrants: 7 }))
        );
        assert_eq!(
            parse_drew(&drew("drawing", 10)),
            Ok(Some(Drew::InProgress { so_far: 10 }))
        );
        assert_eq!(parse_drew(&drew("done", 7)), Ok(Some(Drew::Done)));
        assert_eq!(parse_drew(&[Value::Int(0)]), Ok(None));
    }

    #[test]
    fn an_unknown_result_is_a_bad_reply() {
        assert!(parse_drew(&drew("maybe", 0)).is_err());
        assert!(parse_drew(&[]).is_err());
        assert!(parse_drew(&[Value::Int(1)]).is_err());
    }
}
