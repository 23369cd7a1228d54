//! Giving up a place or an admission (`leave.lua`).

use super::keys::{Bind, EventKey};
use super::script::lua_script;
use super::{Store, StoreError};

lua_script!(SCRIPT = "leave.lua");

/// The keys `leave.lua` expects, in order.
const KEYS: [EventKey; 3] = [EventKey::Line, EventKey::Granted, EventKey::Active];

impl Store {
    /// Removes `visitor` from the line and from admission; true if it held anything.
    pub async fn leave(&self, event: &str, visitor: &str) -> Result<bool, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS).arg(visitor);
        let removed: u64 = self.eval(call).await?;
        Ok(removed > 0)
    }
}
