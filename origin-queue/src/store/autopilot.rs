//! The autopilot's memory in the event's configuration hash (`autopilot.lua`): read the
//! law's state, write its step (once per period across every replica).

use redis::Value;

use super::event_config::EventConfig;
use super::keys::{Bind, EventKey, KEY_TTL_SECS};
use super::reply::{count, text};
use super::script::lua_script;
use super::{Store, StoreError};

lua_script!(SCRIPT = "autopilot.lua");

/// The keys `autopilot.lua` expects, in order.
const KEYS: [EventKey; 2] = [EventKey::Cfg, EventKey::Stats];

/// An event as the autopilot reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct AutopilotRead {
    /// The configuration in force.
    pub config: EventConfig,
    /// The autopilot's rate, if it has stepped since it was switched on.
    pub rate: Option<f64>,
    /// When it last changed the rate, ms.
    pub changed_ms: u64,
    /// When it last cut the rate, ms.
    pub decreased_ms: u64,
    /// When any replica last stepped, ms (the write's compare-and-set).
    pub at_ms: u64,
    /// Responses in the last fresh window.
    pub last_requests: u64,
    /// True when the rate is what limits admission now.
    pub rate_binds: bool,
}

/// One step to record.
#[derive(Debug, Clone, PartialEq)]
pub struct AutopilotWrite<'a> {
    /// The new rate.
    pub rate: f64,
    /// When it last changed, ms.
    pub changed_ms: u64,
    /// When it was last cut, ms.
    pub decreased_ms: u64,
    /// Responses in the last fresh window.
    pub last_requests: u64,
    /// Why (the law's reason).
    pub reason: &'a str,
    /// The signal it acted on: p95 ms and error share (none without a fresh signal).
    pub signal: Option<(f64, f64)>,
    /// Now, ms.
    pub now_ms: u64,
    /// The `at_ms` this step read.
    pub read_at_ms: u64,
}

impl Store {
    /// The autopilot's view of `event`; `None` if there is no such event.
    pub async fn autopilot_read(&self, event: &str) -> Result<Option<AutopilotRead>, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS).arg("read");
        let reply: Vec<Value> = self.eval(call).await?;
        parse(&reply).map_err(StoreError::bad_reply)
    }

    /// Records a step; false if another replica stepped since `read_at_ms`.
    pub async fn autopilot_write(
        &self,
        event: &str,
        step: &AutopilotWrite<'_>,
    ) -> Result<bool, StoreError> {
        let (p95, share) = step
            .signal
            .map_or((String::new(), String::new()), |(p, s)| {
                (format!("{p:.1}"), format!("{s:.4}"))
            });
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS)
            .arg("write")
            .arg(step.rate.to_string())
            .arg(step.changed_ms)
            .arg(step.decreased_ms)
            .arg(step.reason)
            .arg(p95)
            .arg(share)
            .arg(step.now_ms)
            .arg(step.read_at_ms)
            .arg(KEY_TTL_SECS)
            .arg(step.last_requests);
        let written: u64 = self.eval(call).await?;
        Ok(written == 1)
    }
}

fn parse(reply: &[Value]) -> Result<Option<AutopilotRead>, String> {
    if reply.is_empty() {
        return Ok(None);
    }
    if reply.len() != 7 {
        return Err(format!("an autopilot reply of {} items", reply.len()));
    }
    let config = serde_json::from_str(&text(&reply[0])?)
        .map_err(|e| format!("the stored configuration: {e}"))?;
    let rate = text(&reply[1])?;
    Ok(Some(AutopilotRead {
        config,
        rate: rate.parse().ok(),
        changed_ms: count(&reply[2])?,
        decreased_ms: count(&reply[3])?,
        at_ms: count(&reply[4])?,
        rate_binds: text(&reply[5])? == "rate",
        last_requests: count(&reply[6])?,
    }))
}
