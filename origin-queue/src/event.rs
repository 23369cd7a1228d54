//! The ground floor: what an event is and how it stands, in the words every layer uses
//! (the Redis store reads them from the scripts, the estimate and the API speak them).
//! Its phase, its queueing mode and its pre-queue, as `event.lua` decides them; and
//! what the wait estimate is made from (`Observed`, with what limited admission and
//! when places free), as the scripts report it.

use serde::{Deserialize, Serialize};

/// How an event's line is admitted; switchable while the event runs.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum QueueMode {
    /// First come, first served: the head of the line, strictly in order.
    #[default]
    Fifo,
    /// Each admission step draws uniformly among everyone waiting.
    Random,
    /// A dry run: everyone is let in at once, while the queue records what would have
    /// happened (line length, waits).
    Passthrough,
    /// Sold out or closed: nobody joins, nobody in line is admitted.
    Reject,
}

impl QueueMode {
    /// The name the scripts and the API use.
    pub fn name(self) -> &'static str {
        match self {
            QueueMode::Fifo => "fifo",
            QueueMode::Random => "random",
            QueueMode::Passthrough => "passthrough",
            QueueMode::Reject => "reject",
        }
    }

    /// Every mode.
    pub const ALL: [QueueMode; 4] = [
        QueueMode::Fifo,
        QueueMode::Random,
        QueueMode::Passthrough,
        QueueMode::Reject,
    ];

    /// The mode a script names.
    pub fn from_script(name: &str) -> Option<QueueMode> {
        QueueMode::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Where an event's pre-queue stands; decided by `event_prequeue` in `event.lua`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Prequeue {
    /// The event has no pre-queue.
    #[default]
    None,
    /// Before `prequeue_opens_at`: nobody joins yet.
    NotOpen,
    /// Whoever joins now takes part in the opening draw.
    Open,
    /// `opens_at` has passed; the draw is about to run (nobody is admitted before).
    Due,
    /// The draw has given every entrant a place; later visitors queue behind.
    Drawn,
}

impl Prequeue {
    /// Every state.
    pub const ALL: [Prequeue; 5] = [
        Prequeue::None,
        Prequeue::NotOpen,
        Prequeue::Open,
        Prequeue::Due,
        Prequeue::Drawn,
    ];

    /// The state's name in the API and the metrics.
    pub fn name(self) -> &'static str {
        match self {
            Prequeue::None => "none",
            Prequeue::NotOpen => "not_open",
            Prequeue::Open => "open",
            Prequeue::Due => "due",
            Prequeue::Drawn => "drawn",
        }
    }

    /// The state `event_prequeue` names ('' for none).
    pub fn from_script(name: &str) -> Option<Prequeue> {
        match name {
            "" => Some(Prequeue::None),
            _ => Prequeue::ALL.into_iter().find(|p| p.name() == name),
        }
    }
}

/// Where an event stands; decided by `event_phase` in `event.lua`, nowhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before `opens_at`: visitors join, nobody is admitted yet.
    Scheduled,
    /// Visitors join and the head of the line is admitted.
    Open,
    /// An operator stopped admission: visitors join, nobody is admitted.
    Paused,
    /// From `closes_at` on: nobody joins, nobody is admitted.
    Closed,
}

impl Phase {
    /// The phase `event_phase` names.
    pub fn from_script(name: &str) -> Option<Phase> {
        Some(match name {
            "scheduled" => Phase::Scheduled,
            "open" => Phase::Open,
            "paused" => Phase::Paused,
            "closed" => Phase::Closed,
            _ => return None,
        })
    }
}

/// When places free while sessions bind, as the last admission step saw it: places free
/// now (negative: more sessions than `max_active`, which must end before a place frees),
/// then the sessions ending in each tenth of a session length from now (see `admit.lua`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SlotEnds(pub Option<[i64; 11]>);

/// What limited admission at the last admission step (see `admit.lua`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Binding {
    /// No admission step has run yet.
    #[default]
    Unknown,
    /// The token bucket: the configured rate.
    Rate,
    /// `max_active`: places free as sessions end.
    Slots,
    /// Fewer were waiting than the bucket and the places allowed.
    Line,
    /// Not admitting (scheduled, paused or closed).
    NotAdmitting,
}

impl Binding {
    /// The name `admit.lua` records (`""`: no step yet).
    pub fn from_script(name: &str) -> Option<Binding> {
        Some(match name {
            "" => Binding::Unknown,
            "rate" => Binding::Rate,
            "slots" => Binding::Slots,
            "line" => Binding::Line,
            "none" => Binding::NotAdmitting,
            _ => return None,
        })
    }
}

/// What the estimate is made from.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Observed {
    /// Admissions in the last minute.
    pub last_1m: u64,
    /// Admissions in the last 5 minutes.
    pub last_5m: u64,
    /// Admissions in the last 15 minutes.
    pub last_15m: u64,
    /// Visitors in line silent for half an abandon timeout or more (walked away, not
    /// yet swept), at the sweep's last pass over the line.
    pub silent: u64,
    /// In line now, for the whole event.
    pub waiting: u64,
    /// Of those, joined within the last 1–1.5 abandon timeouts: too recent for any
    /// sweep to have seen them silent. They are the back of the line.
    pub recent_joins: u64,
    /// The event's `max_active`.
    pub max_active: u64,
    /// The event's `session_seconds`.
    pub session_secs: f64,
    /// When places free, while sessions bind.
    pub slot_ends: SlotEnds,
    /// What limited admission at the last step.
    pub binding: Binding,
    /// The event's configured admission rate (per second).
    pub configured_rate: f64,
    /// Longest poll interval the event allows (a third of its abandon timeout and of
    /// its claim window), ms.
    pub poll_cap_ms: u64,
    /// Seconds since the first admission: a window longer than that is measured over
    /// the time it actually covers, not over its nominal length.
    pub observing_secs: f64,
    /// Seconds until the event opens (0 once it is open): nobody is admitted before,
    /// so a wait starts with them.
    pub opens_in_secs: f64,
    /// Admission is paused by the operator: nobody knows for how long.
    pub paused: bool,
    /// The event's queueing mode.
    pub mode: QueueMode,
    /// Where the event's pre-queue stands.
    pub prequeue: Prequeue,
}
