//! Pausing and resuming admission (`pause.lua`).

use super::keys::{Bind, EventKey};
use super::script::lua_script;
use super::{Store, StoreError};

lua_script!(SCRIPT = "pause.lua");

/// The keys `pause.lua` expects, in order.
const KEYS: [EventKey; 1] = [EventKey::Cfg];

impl Store {
    /// Pauses or resumes admission; false if there is no such event.
    pub async fn set_paused(&self, event: &str, paused: bool) -> Result<bool, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS)
            .arg(if paused { "1" } else { "0" });
        let found: u64 = self.eval(call).await?;
        Ok(found == 1)
    }
}
