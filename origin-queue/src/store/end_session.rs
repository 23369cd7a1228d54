//! The backend ended a session (`end_session.lua`): its place frees at once.

use super::keys::{Bind, EventKey, KEY_TTL_SECS};
use super::script::lua_script;
use super::{Store, StoreError};

lua_script!(SCRIPT = "end_session.lua");

/// The keys `end_session.lua` expects, in order.
const KEYS: [EventKey; 3] = [EventKey::Cfg, EventKey::Active, EventKey::Stats];

impl Store {
    /// Ends `visitor`'s active session of `event`, whose pass was issued at
    /// `pass_issued_ms`; true if it was active (false: nothing to end, a no-op).
    pub async fn end_session(
        &self,
        event: &str,
        visitor: &str,
        pass_issued_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS)
            .arg(visitor)
            .arg(pass_issued_ms)
            .arg(KEY_TTL_SECS);
        let ended: u64 = self.eval(call).await?;
        Ok(ended == 1)
    }
}
