//! An event's live figures (`stats.lua`), for the admin API and the public event state.

use redis::Value;
use serde::Serialize;

use super::event_config::EventConfig;
use super::keys::{Bind, EventKey};
use super::reply::{self, no_event, observing_secs, Named, Shape};
use super::script::lua_script;
use super::{Store, StoreError};
use crate::event::Observed;
use crate::event::{Phase, Prequeue, QueueMode};

lua_script!(SCRIPT = "reply.lua", "event.lua", "stats.lua");

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

fn autopilot_status(r: &Named) -> Result<Option<AutopilotStatus>, String> {
    if r.count("autopilot")? == 0 {
        return Ok(None);
    }
    let number = |name: &str| -> Result<Option<f64>, String> { Ok(r.text(name)?.parse().ok()) };
    Ok(Some(AutopilotStatus {
        reason: r.text("autopilot_reason")?,
        backend_p95_ms: number("autopilot_p95_ms")?,
        backend_error_share: number("autopilot_error_share")?,
        stepped_at_ms: r.count("autopilot_at_ms")?,
    }))
}

/// The reply's items (`STATS_REPLY` in `stats.lua`).
static REPLY: std::sync::LazyLock<Shape> =
    std::sync::LazyLock::new(|| Shape::declared(include_str!("stats.lua"), "STATS_REPLY"));

/// Reads the reply of `stats.lua`.
fn parse(reply: &[Value], now_ms: u64) -> Result<Option<Stats>, String> {
    if no_event(reply)? {
        return Ok(None);
    }
    let r = REPLY.read(reply)?;
    if r.int("found")? != 1 {
        return Err(format!("a stats reply of {reply:?}"));
    }
    let n = |name: &str| r.count(name);
    let phase = r.text("phase")?;
    let state = Phase::from_script(&phase).ok_or_else(|| format!("a phase of {phase:?}"))?;
    let config = serde_json::from_str(&r.text("config")?)
        .map_err(|e| format!("the stored configuration: {e}"))?;
    let last = [n("n1")?, n("n5")?, n("n15")?];
    let observed = Observed {
        last_1m: last[0],
        last_5m: last[1],
        last_15m: last[2],
        observing_secs: observing_secs(n("started_ms")?, now_ms),
        ..Observed::default()
    };
    let dry_admitted = n("dry_admitted_total")?;
    let dry_run = DryRun {
        waiting: n("dry_waiting")?,
        admitted_total: dry_admitted,
        mean_wait_seconds: if dry_admitted == 0 {
            0.0
        } else {
            n("dry_wait_ms_total")? as f64 / 1000.0 / dry_admitted as f64
        },
        max_wait_seconds: n("dry_wait_max_ms")? as f64 / 1000.0,
        waiting_max: n("dry_waiting_max")?,
    };
    Ok(Some(Stats {
        state,
        mode: reply::mode(r.item("mode")?)?,
        prequeue: reply::prequeue(r.item("prequeue")?)?,
        prequeue_entrants: n("prequeue_entrants")?,
        dry_run,
        paused: n("paused")? == 1,
        waiting: n("waiting")?,
        granted: n("granted")?,
        active: n("active")?,
        admitted_total: n("admitted_total")?,
        abandoned_total: n("abandoned_total")?,
        lapsed_total: n("lapsed_total")?,
        sessions_ended: SessionsEnded {
            backend: n("ended_backend")?,
            timeout: n("ended_timeout")?,
            left: n("ended_left")?,
        },
        rate_in_force: r
            .text("rate")?
            .parse()
            .map_err(|_| "a rate in force that is no number".to_owned())?,
        autopilot: autopilot_status(&r)?,
        admission_rate: observed.weighted_rate(),
        admitted_last: last,
        pow_difficulty: n("pow_bits")?,
        not_before: n("not_before")?,
        revoked_total: n("revoked_total")?,
        config,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reply::bulk;

    fn reply(phase: &str, config: &str) -> Vec<Value> {
        let int = Value::Int;
        REPLY.build(&[
            ("found", int(1)),
            ("phase", bulk(phase)),
            ("config", bulk(config)),
            ("paused", int(0)),
            ("waiting", int(3)),
            ("granted", int(2)),
            ("active", int(1)),
            ("admitted_total", int(10)),
            ("abandoned_total", int(4)),
            ("lapsed_total", int(5)),
            ("n1", int(6)),
            ("n5", int(7)),
            ("n15", int(8)),
            ("started_ms", int(0)),
            ("mode", bulk("passthrough")),
            ("prequeue", bulk("drawn")),
            ("prequeue_entrants", int(40)),
            ("dry_waiting", int(12)),
            ("dry_admitted_total", int(4)),
            ("dry_wait_ms_total", int(8_000)),
            ("dry_wait_max_ms", int(3_000)),
            ("dry_waiting_max", int(30)),
            ("ended_backend", int(7)),
            ("ended_timeout", int(9)),
            ("ended_left", int(2)),
            ("rate", bulk("12.5")),
            ("autopilot", int(1)),
            ("autopilot_reason", bulk("decrease")),
            ("autopilot_p95_ms", bulk("310.0")),
            ("autopilot_error_share", bulk("0.0200")),
            ("autopilot_at_ms", int(99)),
            ("pow_bits", int(16)),
            ("not_before", int(1_700_000_000)),
            ("revoked_total", int(5)),
        ])
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
