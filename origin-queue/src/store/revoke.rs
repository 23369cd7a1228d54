//! Revoking every pass of an event issued before a cut (`revoke.lua`).

use redis::Value;

use super::keys::{Bind, EventKey, KEY_TTL_SECS};
use super::reply::{count, int};
use super::script::lua_script;
use super::{Store, StoreError};

lua_script!(SCRIPT = "revoke.lua");

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

fn parse(reply: &[Value]) -> Result<Revoked, String> {
    match (reply.first().map(int).transpose()?, reply.len()) {
        (Some(0), 1) => Ok(Revoked::NoEvent),
        (Some(-1), 2) => Ok(Revoked::LaterInForce(count(&reply[1])?)),
        (Some(1), 3) => Ok(Revoked::Done {
            sessions: count(&reply[1])?,
            grants: count(&reply[2])?,
        }),
        _ => Err(format!("a revoke reply of {reply:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_answer() {
        let i = Value::Int;
        assert_eq!(parse(&[i(0)]), Ok(Revoked::NoEvent));
        assert_eq!(parse(&[i(-1), i(9)]), Ok(Revoked::LaterInForce(9)));
        assert_eq!(
            parse(&[i(1), i(3), i(2)]),
            Ok(Revoked::Done {
                sessions: 3,
                grants: 2
            })
        );
        assert!(parse(&[i(1)]).is_err());
    }
}
