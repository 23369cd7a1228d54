//! Revoking every pass of an event issued before a cut (`revoke.lua`).

use redis::Value;

use super::keys::{Bind, EventKey, KEY_TTL_SECS};
use super::reply::{no_event, Shape};
use super::script::lua_script;
use super::{Store, StoreError};

lua_script!(SCRIPT = "reply.lua", "revoke.lua");

/// The keys `revoke.lua` expects, in order.
const KEYS: [EventKey; 5] = [
    EventKey::Cfg,
    EventKey::Granted,
    EventKey::Active,
    EventKey::Barred,
    EventKey::Stats,
];

/// What becomes of visitors admitted before the cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterRevoke {
    /// They may join again, at the back of the line, like anyone new.
    Requeue,
    /// They may not join the event again with the same identity (ticket or signed-in
    /// user) while the bar lasts.
    Bar,
}

impl AfterRevoke {
    fn name(self) -> &'static str {
        match self {
            AfterRevoke::Requeue => "requeue",
            AfterRevoke::Bar => "bar",
        }
    }
}

/// What a revocation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The cut is in force: this many sessions and grants made before it ended.
    Done { sessions: u64, grants: u64 },
    /// A later cut is in force already (unix seconds): a cut never moves back.
    LaterInForce(u64),
    /// No such event.
    NoEvent,
}

impl Store {
    /// Sets `event`'s cut at `cut` (unix seconds) and ends every admission made before
    /// it; those visitors are barred for `bar_secs` if `after` says so.
    pub async fn revoke(
        &self,
        event: &str,
        cut: u64,
        after: AfterRevoke,
        bar_secs: u64,
        now_ms: u64,
    ) -> Result<Revoked, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS)
            .arg(cut)
            .arg(after.name())
            .arg(now_ms)
            .arg(KEY_TTL_SECS)
            .arg(bar_secs.max(1));
        let reply: Vec<Value> = self.eval(call).await?;
        parse(&reply).map_err(StoreError::bad_reply)
    }
}

/// The items of a revocation's reply (`REVOKE_REPLY` in `revoke.lua`).
static REPLY: std::sync::LazyLock<Shape> =
    std::sync::LazyLock::new(|| Shape::declared(include_str!("revoke.lua"), "REVOKE_REPLY"));

fn parse(reply: &[Value]) -> Result<Revoked, String> {
    if no_event(reply)? {
        return Ok(Revoked::NoEvent);
    }
    let revoked = REPLY.read(reply)?;
    if revoked.count("found")? != 1 {
        return Err(format!("a revoke reply of {reply:?}"));
    }
    Ok(match revoked.count("later_cut")? {
        0 => Revoked::Done {
            sessions: revoked.count("sessions")?,
            grants: revoked.count("grants")?,
        },
        later => Revoked::LaterInForce(later),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply as `revoke.lua` builds it.
    fn reply(later_cut: i64, sessions: i64, grants: i64) -> Vec<Value> {
        REPLY.build(&[
            ("found", Value::Int(1)),
            ("later_cut", Value::Int(later_cut)),
            ("sessions", Value::Int(sessions)),
            ("grants", Value::Int(grants)),
        ])
    }

    #[test]
    fn reads_each_answer() {
        assert_eq!(parse(&[Value::Int(0)]), Ok(Revoked::NoEvent));
        assert_eq!(parse(&reply(9, 0, 0)), Ok(Revoked::LaterInForce(9)));
        assert_eq!(
            parse(&reply(0, 3, 2)),
            Ok(Revoked::Done {
                sessions: 3,
                grants: 2
            })
        );
        assert!(parse(&[Value::Int(1)]).is_err());
        assert!(parse(&[]).is_err());
    }
}
