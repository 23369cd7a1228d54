//! One admission step of an event (`admit.lua`): the sweeps, then the token bucket at
//! the head of the line.

use super::keys::{Bind, EventKey, KEY_TTL_SECS};
use super::script::lua_script;
use super::{Store, StoreError};

lua_script!(SCRIPT = "event.lua", "seen.lua", "admit.lua");

/// The keys `admit.lua` expects, in order.
const KEYS: [EventKey; 9] = EventKey::LINE_AND_ADMISSIONS;

/// Most visitors one admission step moves.
const MAX_BATCH: u64 = 1_000;
/// Most entries one sweep removes.
const SWEEP_LIMIT: u64 = 500;

/// What an admission step did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Step {
    /// Moved to granted.
    pub admitted: u64,
    /// Grants that lapsed unclaimed.
    pub lapsed: u64,
    /// Waiting visitors who stopped polling.
    pub abandoned: u64,
    /// In line after the step.
    pub waiting: u64,
    /// Admitted, pass not yet picked up.
    pub granted: u64,
    /// In session.
    pub active: u64,
}

impl Store {
    /// One admission step (sweeps, then the token bucket at the head of the line);
    /// `None` if the event no longer exists. `missed_poll_ms` is the latest poll this
    /// instance failed to serve (0: none): while the abandonment window holds it, the
    /// step drops nobody as abandoned.
    pub async fn admit(
        &self,
        event: &str,
        now_ms: u64,
        missed_poll_ms: u64,
    ) -> Result<Option<Step>, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS)
            .arg(now_ms)
            .arg(MAX_BATCH)
            .arg(SWEEP_LIMIT)
            .arg(KEY_TTL_SECS)
            .arg(missed_poll_ms);
        let (admitted, lapsed, abandoned, _ended, waiting, granted, active): (
            i64,
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
        ) = self.eval(call).await?;
        Ok((admitted >= 0).then_some(Step {
            admitted: admitted as u64,
            lapsed,
            abandoned,
            waiting,
            granted,
            active,
        }))
    }
}
