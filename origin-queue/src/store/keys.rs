//! The names of the queue's Redis keys, in one place.
//!
//! Every key of one event carries the hash tag `{wr:<event>}`, so all of them live in
//! one hash slot and every multi-key change is one Lua script. A script names the keys
//! it touches, in the order its `KEYS` table expects, as a list of [`EventKey`]s (see
//! [`Bind::event_keys`]); nothing else spells a key.

use super::script::Invocation;

/// Event keys live this long after the last write that touched them.
pub const KEY_TTL_SECS: u64 = 7 * 24 * 3600;

/// The set of event ids the admission loop steps through (one small key; ids of
/// events whose keys have expired are removed by the loop). Like every other key it
/// expires: [`KEY_TTL_SECS`] after the last configuration or the last time a running
/// admission loop listed it, so a cluster left without origin-queue empties itself.
pub const EVENTS: &str = "wr:events";

/// One of an event's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKey {
    /// Hash: the configuration, the pause flag and the token bucket.
    Cfg,
    /// Counter: the last arrival number given.
    Seq,
    /// Sorted set: waiting visitors, scored by arrival number (the line).
    Line,
    /// Hash: the poll ring's epochs, the sweep cursor and the latest missed poll.
    SeenIndex,
    /// Bitmaps: who polled in each of the ring's three epochs (bit = arrival number).
    Seen(u8),
    /// Sorted set: admitted visitors who have not picked up their pass, scored by the
    /// claim deadline (ms).
    Granted,
    /// Sorted set: visitors in session, scored by the session's end (ms).
    Active,
    /// Hash: admission counts per 10 s bucket, the 1/5/15-minute windows and totals.
    Stats,
    /// Hash: the opening draw's public record (commitment, then seed and entrants).
    Draw,
    /// Sorted set: the opening draw's order (member: sort key and entrant id, score 0).
    DrawOrder,
    /// Sorted set: passthrough's dry-run line (visitor -> join ms).
    DryLine,
    /// Sorted set: passthrough's dry-run sessions (visitor -> would-be session end ms).
    DryActive,
    /// Sorted set: visitors whose admission the operator revoked and barred from joining
    /// again (visitor -> when, ms).
    Barred,
    /// String: the operator's waiting-room page template (HTML), if any; it lives until
    /// the event closes (see `page_expiry.lua`).
    Page,
}

impl EventKey {
    /// The keys `admit.lua` and `status.lua` both take, in this order (both read the
    /// configuration, the line, the poll ring, the admitted and the statistics).
    pub const LINE_AND_ADMISSIONS: [EventKey; 9] = [
        EventKey::Cfg,
        EventKey::Line,
        EventKey::SeenIndex,
        EventKey::Seen(0),
        EventKey::Seen(1),
        EventKey::Seen(2),
        EventKey::Granted,
        EventKey::Active,
        EventKey::Stats,
    ];

    /// The poll ring's three bitmaps.
    pub const SEEN: [EventKey; 3] = [EventKey::Seen(0), EventKey::Seen(1), EventKey::Seen(2)];

    fn suffix(self) -> &'static str {
        match self {
            EventKey::Cfg => "cfg",
            EventKey::Seq => "seq",
            EventKey::Line => "q",
            EventKey::SeenIndex => "seenx",
            EventKey::Seen(0) => "seen0",
            EventKey::Seen(1) => "seen1",
            EventKey::Seen(_) => "seen2",
            EventKey::Granted => "granted",
            EventKey::Active => "active",
            EventKey::Stats => "stats",
            EventKey::Draw => "draw",
            EventKey::DrawOrder => "drawn",
            EventKey::DryLine => "dryq",
            EventKey::DryActive => "dryactive",
            EventKey::Barred => "barred",
            EventKey::Page => "page",
        }
    }

    /// This key's name for `event`.
    pub fn of(self, event: &str) -> String {
        format!("{{wr:{event}}}:{}", self.suffix())
    }
}

/// The key of an `Idempotency-Key` record of `event`.
pub fn idempotency(event: &str, key: &str) -> String {
    format!("{{wr:{event}}}:idem:{key}")
}

/// The key recording that a proof-of-work challenge of `event` (by its salt, hex) was
/// used: a solution gets one place.
pub fn pow_used(event: &str, salt_hex: &str) -> String {
    format!("{{wr:{event}}}:pow:{salt_hex}")
}

/// Binding a script's keys.
pub trait Bind {
    /// Adds `keys` of `event`, in order.
    fn event_keys(&mut self, event: &str, keys: &[EventKey]) -> &mut Self;
}

impl Bind for Invocation<'_> {
    fn event_keys(&mut self, event: &str, keys: &[EventKey]) -> &mut Self {
        for key in keys {
            self.key(key.of(event));
        }
        self
    }
}

/// The Redis Cluster hash slot of `key`: CRC16 (XMODEM) of its hash tag (the text
/// between the first `{` and the next `}`, if not empty) or of the whole key, mod 16384.
pub fn cluster_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|b| *b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|b| *b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    let crc = tagged.unwrap_or(key).iter().fold(0u16, |crc, byte| {
        (0..8).fold(crc ^ (u16::from(*byte) << 8), |c, _| {
            if c & 0x8000 != 0 {
                (c << 1) ^ 0x1021
            } else {
                c << 1
            }
        })
    });
    crc % 16384
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster_keyslot() {
        // Values from `redis-cli CLUSTER KEYSLOT` (Redis 7.0).
        assert_eq!(cluster_slot(b"somekey"), 11058);
        assert_eq!(cluster_slot(b"foo"), 12182);
        assert_eq!(cluster_slot(b"{foo}bar"), 12182);
        assert_eq!(
            cluster_slot(b"{}foo"),
            9500,
            "an empty tag hashes the whole key"
        );
    }

    #[test]
    fn every_key_of_an_event_shares_its_slot() {
        let all = EventKey::LINE_AND_ADMISSIONS.into_iter().chain([
            EventKey::Seq,
            EventKey::Draw,
            EventKey::DrawOrder,
            EventKey::DryLine,
            EventKey::DryActive,
            EventKey::Barred,
            EventKey::Page,
        ]);
        let slot = cluster_slot(EventKey::Cfg.of("sale").as_bytes());
        for key in all {
            assert_eq!(cluster_slot(key.of("sale").as_bytes()), slot, "{key:?}");
        }
        assert_eq!(cluster_slot(idempotency("sale", "k").as_bytes()), slot);
        assert_eq!(cluster_slot(pow_used("sale", "00ff").as_bytes()), slot);
        assert_eq!(EventKey::Line.of("sale"), "{wr:sale}:q");
    }
}
