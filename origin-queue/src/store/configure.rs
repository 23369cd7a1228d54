//! Creating or replacing an event's configuration (`configure.lua`), and registering
//! the event with the admission loop.

use super::event_config::EventConfig;
use super::keys::{Bind, EventKey, EVENTS, KEY_TTL_SECS};
use super::script::lua_script;
use super::{Store, StoreError};
use crate::draw_order::DrawSeed;

lua_script!(SCRIPT = "page_expiry.lua", "configure.lua");

/// The keys `configure.lua` expects, in order.
const KEYS: [EventKey; 3] = [EventKey::Cfg, EventKey::Draw, EventKey::Page];

impl Store {
    /// Creates or replaces an event's configuration and registers it. (The registry is
    /// a key of its own, in another slot: an event configured but not registered, if
    /// the second call fails, is registered by the operator's retry.)
    /// A new event gets a fresh draw seed, committed to at once (see `draw.lua`).
    pub async fn configure(
        &self,
        event: &str,
        cfg: &EventConfig,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let seed = DrawSeed::fresh();
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS)
            .arg(KEY_TTL_SECS)
            .arg(seed.hex())
            .arg(seed.commitment())
            .arg(now_ms);
        for (field, value) in cfg.hash_fields() {
            call.arg(field).arg(value);
        }
        let _: u64 = self.eval(call).await?;
        let mut c = self.link.get();
        let event = event.to_owned();
        self.bounded(async move {
            redis::pipe()
                .sadd(EVENTS, &event)
                .expire(EVENTS, KEY_TTL_SECS as i64)
                .query_async(&mut c)
                .await
        })
        .await
    }
}
