//! Giving up a place or an admission (`leave.lua`).

use super::keys::{Bind, EventKey};
use super::script::lua_script;
use super::{Store, StoreError};

lua_script!(SCRIPT = "leave.lua");

/// The keys `leave.lua` expects, in order.
const KEYS: [EventKey; 4] = [
    EventKey::Line,
    EventKey::Granted,
    EventKey::Active,
    EventKey::Stats,
];

/// What leaving did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    /// The visitor held a place, a grant or a session.
    pub held: bool,
    /// An active session ended (counted as ended by `left`).
    pub ended_session: bool,
}

impl Store {
    /// Removes `visitor` from the line and from admission.
    pub async fn leave(&self, event: &str, visitor: &str) -> Result<Left, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS).arg(visitor);
        let (removed, session): (u64, u64) = self.eval(call).await?;
        Ok(Left {
            held: removed > 0,
            ended_session: session == 1,
        })
    }
}
