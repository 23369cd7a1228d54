//! An event's waiting-room page template, the operator's HTML: stored by
//! `page_template.lua` (only for an event that exists, with the lifetime of
//! `page_expiry.lua`), read and removed with one plain command each.

use super::keys::{Bind, EventKey, KEY_TTL_SECS};
use super::script::lua_script;
use super::{Store, StoreError};

lua_script!(SCRIPT = "page_expiry.lua", "page_template.lua");

/// The keys `page_template.lua` expects, in order.
const KEYS: [EventKey; 2] = [EventKey::Cfg, EventKey::Page];

impl Store {
    /// Stores `html` as `event`'s page template; false if there is no such event.
    pub async fn put_page_template(
        &self,
        event: &str,
        html: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS)
            .arg(html)
            .arg(now_ms)
            .arg(KEY_TTL_SECS);
        let stored: u64 = self.eval(call).await?;
        Ok(stored == 1)
    }

    /// `event`'s page template, if the operator stored one.
    pub async fn page_template(&self, event: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.link.get();
        let key = EventKey::Page.of(event);
        let bytes: Option<Vec<u8>> = self
            .bounded(async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
            .await?;
        bytes
            .map(|b| String::from_utf8(b).map_err(StoreError::bad_reply))
            .transpose()
    }

    /// Removes `event`'s page template (the built-in page is served again); true if
    /// there was one.
    pub async fn delete_page_template(&self, event: &str) -> Result<bool, StoreError> {
        let mut c = self.link.get();
        let key = EventKey::Page.of(event);
        let removed: u64 = self
            .bounded(async move { redis::cmd("DEL").arg(key).query_async(&mut c).await })
            .await?;
        Ok(removed > 0)
    }
}
