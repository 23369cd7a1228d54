//! One admission step of an event (`admit.lua`): the sweeps, then the token bucket at
//! the head of the line (or as the event's queueing mode says).

use redis::Value;

use super::keys::{Bind, EventKey, KEY_TTL_SECS};
use super::reply::{self, Shape};
use super::script::lua_script;
use super::{Store, StoreError};
use crate::event::{Phase, Prequeue, QueueMode};

lua_script!(SCRIPT = "reply.lua", "event.lua", "seen.lua", "admit.lua");

/// The keys `admit.lua` expects, in order.
const KEYS: [EventKey; 11] = [
    EventKey::Cfg,
    EventKey::Line,
    EventKey::SeenIndex,
    EventKey::SEEN[0],
    EventKey::SEEN[1],
    EventKey::SEEN[2],
    EventKey::Granted,
    EventKey::Active,
    EventKey::Stats,
    EventKey::DryLine,
    EventKey::DryActive,
];

/// Most visitors one admission step moves.
const MAX_BATCH: u64 = 1_000;
/// Most entries one sweep removes.
const SWEEP_LIMIT: u64 = 500;

/// What an admission step did.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Step {
    /// Moved to granted.
    pub admitted: u64,
    /// Grants that lapsed unclaimed.
    pub lapsed: u64,
    /// Waiting visitors who stopped polling.
    pub abandoned: u64,
    /// Sessions that ran out (ended by `timeout`).
    pub ended: u64,
    /// In line after the step.
    pub waiting: u64,
    /// Admitted, pass not yet picked up.
    pub granted: u64,
    /// In session.
    pub active: u64,
    /// Passthrough's dry run: in its line after the step.
    pub dry_waiting: u64,
    /// Passthrough's dry run: admitted by this step.
    pub dry_admitted: u64,
    /// Passthrough's dry run: the waits of those admitted by this step, summed (ms).
    pub dry_wait_ms: u64,
    /// The event's queueing mode.
    pub mode: QueueMode,
    /// Where its pre-queue stands.
    pub prequeue: Prequeue,
    /// Where the event stands (`None` only in a default step).
    pub phase: Option<Phase>,
    /// The admission rate in force, per second (the autopilot's, within its bounds,
    /// or the configured one).
    pub rate: f64,
    /// The most visitors admitted at once (granted and active).
    pub max_active: u64,
}

/// What an admission step found.
#[derive(Debug, Clone, Copy)]
pub enum Admission {
    /// The step ran.
    Stepped(Step),
    /// The opening draw is due: nobody is admitted until [`Store::draw`] has run.
    DrawDue,
    /// The event no longer exists.
    Gone,
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
    ) -> Result<Admission, StoreError> {
        let mut call = SCRIPT.prepare_invoke();
        call.event_keys(event, &KEYS)
            .arg(now_ms)
            .arg(MAX_BATCH)
            .arg(SWEEP_LIMIT)
            .arg(KEY_TTL_SECS)
            .arg(missed_poll_ms);
        let reply: Vec<Value> = self.eval(call).await?;
        parse(&reply).map_err(StoreError::bad_reply)
    }
}

/// The reply's items (`ADMIT_REPLY` in `admit.lua`).
static REPLY: std::sync::LazyLock<Shape> =
    std::sync::LazyLock::new(|| Shape::declared(include_str!("admit.lua"), "ADMIT_REPLY"));

/// Reads the reply of `admit.lua`.
fn parse(reply: &[Value]) -> Result<Admission, String> {
    let r = REPLY.read(reply)?;
    let n = |name: &str| r.count(name);
    match r.int("admitted")? {
        -1 => return Ok(Admission::Gone),
        -2 => return Ok(Admission::DrawDue),
        _ => {}
    }
    Ok(Admission::Stepped(Step {
        admitted: n("admitted")?,
        lapsed: n("lapsed")?,
        abandoned: n("abandoned")?,
        ended: n("ended")?,
        waiting: n("waiting")?,
        granted: n("granted")?,
        active: n("active")?,
        dry_waiting: n("dry_waiting")?,
        dry_admitted: n("dry_admitted")?,
        dry_wait_ms: n("dry_wait_ms")?,
        mode: reply::mode(r.item("mode")?)?,
        prequeue: reply::prequeue(r.item("prequeue")?)?,
        phase: Some(phase(r.item("phase")?)?),
        rate: r
            .text("rate")?
            .parse()
            .map_err(|e| format!("a rate in force that is not a number: {e}"))?,
        max_active: n("max_active")?,
    }))
}

/// A phase item (`event_phase` in `event.lua`).
fn phase(v: &Value) -> Result<Phase, String> {
    let name = reply::text(v)?;
    Phase::from_script(&name).ok_or_else(|| format!("a phase of {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reply::bulk;

    fn reply(admitted: i64, mode: &str) -> Vec<Value> {
        let int = Value::Int;
        REPLY.build(&[
            ("admitted", int(admitted)),
            ("lapsed", int(1)),
            ("abandoned", int(2)),
            ("ended", int(0)),
            ("waiting", int(40)),
            ("granted", int(3)),
            ("active", int(9)),
            ("dry_waiting", int(12)),
            ("dry_admitted", int(4)),
            ("dry_wait_ms", int(8_000)),
            ("mode", bulk(mode)),
            ("prequeue", bulk("drawn")),
            ("phase", bulk("paused")),
            ("rate", bulk("12.5")),
            ("max_active", int(300)),
        ])
    }

    #[test]
    fn reads_a_step() {
        let Ok(Admission::Stepped(step)) = parse(&reply(5, "passthrough")) else {
            panic!("not a step");
        };
        assert_eq!((step.admitted, step.waiting, step.active), (5, 40, 9));
        assert_eq!(
            (step.dry_waiting, step.dry_admitted, step.dry_wait_ms),
            (12, 4, 8_000)
        );
        assert_eq!(
            (step.mode, step.prequeue),
            (QueueMode::Passthrough, Prequeue::Drawn)
        );
        assert_eq!(
            (step.phase, step.rate, step.max_active),
            (Some(Phase::Paused), 12.5, 300)
        );
    }

    #[test]
    fn an_unknown_phase_is_a_bad_reply() {
        let mut r = reply(5, "fifo");
        r[REPLY.index("phase").unwrap()] = bulk("sleeping");
        assert!(parse(&r).is_err());
    }

    #[test]
    fn a_due_draw_and_a_gone_event_are_told_apart() {
        assert!(matches!(parse(&reply(-2, "fifo")), Ok(Admission::DrawDue)));
        assert!(matches!(parse(&reply(-1, "")), Ok(Admission::Gone)));
    }

    #[test]
    fn an_unknown_mode_is_a_bad_reply() {
        assert!(parse(&reply(0, "lottery")).is_err());
    }
}
