//! An event's live figures (`stats.lua`), for the admin API and the public event state.

use redis::Value;
use serde::Serialize;

use super::event_config::{EventConfig, Phase, Prequeue, QueueMode};
use super::keys::{Bind, EventKey};
use super::reply::{self, count, observing_secs, text};
use super::script::lua_script;
use super::{Store, StoreError};
use crate::eta::Observed;

lua_script!(SCRIPT = "event.lua", "stats.lua");

/// The keys `stats.lua` expects, in order.
const KEYS: [EventKey; 7] = [
    EventKey::Cfg,
    EventKey::Line,
    EventKey::Granted,
    EventKey::Active,
    EventKey::Stats,
    EventKey::Draw,
    EventKey::DryLine,
];

/// Live figures for an event.
#[derive(Debug, Serialize, PartialEq)]
pub struct Stats {
    /// Where the event stands.
    pub state: Phase,
    /// In line.
    pub waiting: u64,
    /// Admitted, pass not yet picked up.
    pub granted: u64,
    /// Admitted, in session.
    pub active: u64,
    /// Admitted since creation.
    pub admitted_total: u64,
    /// Left by not polling.
    pub abandoned_total: u64,
    /// Grants that lapsed.
    pub lapsed_total: u64,
    /// Sessions ended so far, by cause.
    pub sessions_ended: SessionsEnded,
    /// The admission rate in force: the autopilot's, or the configured one.
    pub rate_in_force: f64,
    /// What the autopilot does, when it is on.
    pub autopilot: Option<AutopilotStatus>,
    /// Weighted observed admission rate per second.
    pub admission_rate: f64,
    /// Admissions in the last 1, 5, 15 minutes.
    pub admitted_last: [u64; 3],
    /// Paused by an operator.
    pub paused: bool,
    /// The queueing mode.
    pub mode: QueueMode,
    /// Where the pre-queue stands.
    pub prequeue: Prequeue,
    /// Entrants in the opening draw: so far, or drawn (0 without a pre-queue).
    pub prequeue_entrants: u64,
    /// What passthrough's dry run recorded (kept after the mode changes, until the
    /// next dry run adds to it).
    pub dry_run: DryRun,
    /// The proof-of-work difficulty a new place costs now (0: none).
    pub pow_difficulty: u64,
    /// The cut: every pass issued before it (unix seconds) is revoked (0: none).
    pub not_before: u64,
    /// Admissions (sessions and grants) ended by revocations so far.
    pub revoked_total: u64,
    /// The configuration.
    pub config: EventConfig,
}

/// What passthrough's dry run recorded: the line and the waits there would have been.
#[derive(Debug, Serialize, PartialEq, Default)]
pub struct DryRun {
    /// Would be waiting now.
    pub waiting: u64,
    /// The longest the line would have been.
    pub waiting_max: u64,
    /// Would have been admitted so far.
    pub admitted_total: u64,
    /// Their mean wait, seconds (0 before any).
    pub mean_wait_seconds: f64,
    /// The longest of their waits, seconds.
    pub max_wait_seconds: f64,
}

impl Store {
    /// Live figures; `None` if the event does not exist.
    pub async fn stats(&self, event: &str, now_ms: u64) -> Result<Option<Stats>, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS).arg(now_ms);
        let reply: Vec<Value> = self.eval(call).await?;
        parse(&reply, now_ms).map_err(StoreError::bad_reply)
    }
}

/// Sessions ended, by cause; each session is counted once, under the first cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SessionsEnded {
    /// The backend ended it (the session-end header or the API call).
    pub backend: u64,
    /// It ran out (`session_seconds`).
    pub timeout: u64,
    /// The visitor left (`POST …/leave` with their ticket).
    pub left: u64,
}

/// The autopilot's last step, as the stats show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutopilotStatus {
    /// Why the rate is what it is (`increase`, `decrease`, `hold`, `not_binding`,
    /// `thin`, `fallback`; empty before its first step).
    pub reason: String,
    /// The backend's p95 response time it acted on, ms (none without a fresh signal).
    pub backend_p95_ms: Option<f64>,
    /// The backend's error share it acted on.
    pub backend_error_share: Option<f64>,
    /// When it last stepped, unix ms (0: not yet).
    pub stepped_at_ms: u64,
}

fn autopilot_status(items: &[Value]) -> Result<Option<AutopilotStatus>, String> {
    if count(&items[0])? == 0 {
        return Ok(None);
    }
    let number = |v: &Value| -> Result<Option<f64>, String> { Ok(text(v)?.parse().ok()) };
    Ok(Some(AutopilotStatus {
        reason: text(&items[1])?,
        backend_p95_ms: number(&items[2])?,
        backend_error_share: number(&items[3])?,
        stepped_at_ms: count(&items[4])?,
    }))
}

/// Reads the reply of `stats.lua`.
fn parse(reply: &[Value], now_ms: u64) -> Result<Option<Stats>, String> {
    match reply.first().map(count).transpose()? {
        Some(0) => return Ok(None),
        Some(1) if reply.len() == 34 => {}
        _ => return Err(format!("a stats reply of {} items", reply.len())),
    }
    let n = |i: usize| count(&reply[i]);
    let phase = text(&reply[1])?;
    let state = Phase::from_script(&phase).ok_or_else(|| format!("a phase of {phase:?}"))?;
    let config = serde_json::from_str(&text(&reply[2])?)
        .map_err(|e| format!("the stored configuration: {e}"))?;
    let last = [n(10)?, n(11)?, n(12)?];
    let observed = Observed {
        last_1m: last[0],
        last_5m: last[1],
        last_15m: last[2],
        observing_secs: observing_secs(n(13)?, now_ms),
        ..Observed::default()
    };
    let dry_admitted = n(18)?;
    let dry_run = DryRun {
        waiting: n(17)?,
        admitted_total: dry_admitted,
        mean_wait_seconds: if dry_admitted == 0 {
            0.0
        } else {
            n(19)? as f64 / 1000.0 / dry_admitted as f64
        },
        max_wait_seconds: n(20)? as f64 / 1000.0,
        waiting_max: n(21)?,
    };
    Ok(Some(Stats {
        state,
        mode: reply::mode(&reply[14])?,
        prequeue: reply::prequeue(&reply[15])?,
        prequeue_entrants: n(16)?,
        dry_run,
        paused: n(3)? == 1,
        waiting: n(4)?,
        granted: n(5)?,
        active: n(6)?,
        admitted_total: n(7)?,
        abandoned_total: n(8)?,
        lapsed_total: n(9)?,
        sessions_ended: SessionsEnded {
            backend: n(22)?,
            timeout: n(23)?,
            left: n(24)?,
        },
        rate_in_force: text(&reply[25])?
            .parse()
            .map_err(|_| "a rate in force that is no number".to_owned())?,
        autopilot: autopilot_status(&reply[26..31])?,
        admission_rate: observed.weighted_rate(),
        admitted_last: last,
        pow_difficulty: n(31)?,
        not_before: n(32)?,
        revoked_total: n(33)?,
        config,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reply::bulk;

    fn reply(phase: &str, config: &str) -> Vec<Value> {
        let mut reply = vec![Value::Int(1), bulk(phase), bulk(config), Value::Int(0)];
        reply.extend([3, 2, 1, 10, 4, 5, 6, 7, 8, 0].map(Value::Int));
        reply.extend([bulk("passthrough"), bulk("drawn")]);
        reply.extend([40, 12, 4, 8_000, 3_000, 30].map(Value::Int));
        reply.extend([7, 9, 2].map(Value::Int));
        reply.extend([bulk("12.5"), Value::Int(1), bulk("decrease"), bulk("310.0")]);
        reply.extend([bulk("0.0200"), Value::Int(99)]);
        reply.extend([16, 1_700_000_000, 5].map(Value::Int));
        reply
    }

    const CONFIG: &str = r#"{"rate_per_second":5.0,"burst":5,"max_active":10,"session_seconds":60,"claim_seconds":30,"abandon_seconds":30,"opens_at":0,"closes_at":9}"#;

    #[test]
    fn reads_the_figures() {
        let stats = parse(&reply("open", CONFIG), 1_000).unwrap().unwrap();
        assert_eq!(stats.state, Phase::Open);
        assert_eq!((stats.waiting, stats.granted, stats.active), (3, 2, 1));
        assert_eq!(stats.admitted_total, 10);
        assert_eq!(stats.admitted_last, [6, 7, 8]);
        assert_eq!(
            (stats.pow_difficulty, stats.not_before, stats.revoked_total),
            (16, 1_700_000_000, 5)
        );
        assert_eq!(stats.config.burst, 5);
        assert_eq!(
            (stats.mode, stats.prequeue),
            (QueueMode::Passthrough, Prequeue::Drawn)
        );
        assert_eq!(stats.prequeue_entrants, 40);
        assert_eq!(stats.dry_run.waiting, 12);
        assert_eq!(stats.dry_run.mean_wait_seconds, 2.0);
        assert_eq!(stats.dry_run.max_wait_seconds, 3.0);
        assert_eq!(stats.dry_run.waiting_max, 30);
        let ended = SessionsEnded {
            backend: 7,
            timeout: 9,
            left: 2,
        };
        assert_eq!(stats.sessions_ended, ended);
        assert_eq!(stats.rate_in_force, 12.5);
        let autopilot = stats.autopilot.unwrap();
        assert_eq!(autopilot.reason, "decrease");
        assert_eq!(autopilot.backend_p95_ms, Some(310.0));
        assert_eq!(autopilot.stepped_at_ms, 99);
    }

    #[test]
    fn no_event_is_none() {
        assert_eq!(parse(&[Value::Int(0)], 0), Ok(None));
    }

    #[test]
    fn an_unknown_phase_is_a_bad_reply() {
        assert!(parse(&reply("ajar", CONFIG), 0).is_err());
    }

    #[test]
    fn an_unreadable_configuration_is_a_bad_reply() {
        assert!(parse(&reply("open", "{"), 0).is_err());
    }
}
