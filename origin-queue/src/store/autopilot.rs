//! The autopilot's memory in the event's configuration hash (`autopilot.lua`): read the
//! law's state, write its step (once per period across every replica).

use redis::Value;

use super::event_config::EventConfig;
use super::keys::{Bind, EventKey, KEY_TTL_SECS};
use super::reply::Shape;
use super::script::lua_script;
use super::{Store, StoreError};

lua_script!(SCRIPT = "reply.lua", "autopilot.lua");

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

/// The read's items (`AUTOPILOT_READ` in `autopilot.lua`).
static READ: std::sync::LazyLock<Shape> =
    std::sync::LazyLock::new(|| Shape::declared(include_str!("autopilot.lua"), "AUTOPILOT_READ"));

fn parse(reply: &[Value]) -> Result<Option<AutopilotRead>, String> {
    if reply.is_empty() {
        return Ok(None);
    }
    let r = READ.read(reply)?;
    let config = serde_json::from_str(&r.text("config")?)
        .map_err(|e| format!("the stored configuration: {e}"))?;
    let rate = r.text("rate")?;
    Ok(Some(AutopilotRead {
        config,
        rate: rate.parse().ok(),
        changed_ms: r.count("changed_ms")?,
        decreased_ms: r.count("decreased_ms")?,
        at_ms: r.count("at_ms")?,
        rate_binds: r.text("binding")? == "rate",
        last_requests: r.count("requests")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reply::bulk;

    const CONFIG: &str = r#"{"rate_per_second":5.0,"burst":5,"max_active":10,"session_seconds":60,"claim_seconds":30,"abandon_seconds":30,"opens_at":0,"closes_at":9}"#;

    #[test]
    fn reads_the_autopilot_s_memory_by_name() {
        let int = Value::Int;
        let reply = READ.build(&[
            ("config", bulk(CONFIG)),
            ("rate", bulk("12.5")),
            ("changed_ms", int(1_000)),
            ("decreased_ms", int(900)),
            ("at_ms", int(2_000)),
            ("binding", bulk("rate")),
            ("requests", int(340)),
        ]);
        let read = parse(&reply).unwrap().unwrap();
        assert_eq!(read.rate, Some(12.5));
        assert_eq!(
            (read.changed_ms, read.decreased_ms, read.at_ms),
            (1_000, 900, 2_000)
        );
        assert!(read.rate_binds);
        assert_eq!(read.last_requests, 340);
        assert_eq!(parse(&[]).unwrap().map(|r| r.at_ms), None);
    }

    #[test]
    fn a_reply_of_another_shape_is_a_bad_reply() {
        assert!(parse(&[bulk(CONFIG), bulk("")]).is_err());
    }
}
