//! The backend ended a session (`end_session.lua`): its place frees at once.

use super::keys::{Bind, EventKey, KEY_TTL_SECS};
use super::script::lua_script;
use super::{Store, StoreError};

lua_script!(SCRIPT = "end_session.lua");

/// The keys `end_session.lua` expects, in order.
const KEYS: [EventKey; 3] = [EventKey::Cfg, EventKey::Active, EventKey::Stats];

/// What ending a session did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// The session was active and is ended now.
    Ended,
    /// Nothing to end: ended already, never claimed, or an earlier session's pass.
    NotActive,
    /// The pass was issued before the event's cut: revoked (the revocation ended its
    /// session).
    Revoked,
}

impl Store {
    /// Ends `visitor`'s active session of `event`, whose pass was issued at
    /// `pass_issued_ms`.
    pub async fn end_session(
        &self,
        event: &str,
        visitor: &str,
        pass_issued_ms: u64,
    ) -> Result<SessionEnd, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS)
            .arg(visitor)
            .arg(pass_issued_ms)
            .arg(KEY_TTL_SECS);
        let ended: i64 = self.eval(call).await?;
        match ended {
            1 => Ok(SessionEnd::Ended),
            0 => Ok(SessionEnd::NotActive),
            -1 => Ok(SessionEnd::Revoked),
            other => Err(StoreError::bad_reply(format!(
                "end_session.lua answered {other}"
            ))),
        }
    }
}
