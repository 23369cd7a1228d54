//! An event's configuration as the admin API takes it, and its validation.

use serde::{Deserialize, Serialize};

pub use crate::event::{Phase, Prequeue, QueueMode};

/// An event's configuration, as the admin API takes it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventConfig {
    /// Admissions per second.
    pub rate_per_second: f64,
    /// Admissions allowed at once after a pause.
    pub burst: u64,
    /// Most admitted visitors (granted or in session) at once.
    pub max_active: u64,
    /// How long an admission pass lasts.
    pub session_seconds: u64,
    /// How long an admitted visitor has to pick up the pass.
    pub claim_seconds: u64,
    /// A waiting visitor who does not poll for this long leaves the line.
    pub abandon_seconds: u64,
    /// Unix seconds when admission starts (joining is allowed before).
    pub opens_at: u64,
    /// Unix seconds when the event closes.
    pub closes_at: u64,
    /// Unix seconds when the pre-queue opens (before `opens_at`): whoever joins from
    /// then until `opens_at` gets a place by the opening draw, and nobody can join
    /// before it. Without it, visitors who come before `opens_at` wait in line first
    /// come, first served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prequeue_opens_at: Option<u64>,
    /// How the line is admitted.
    #[serde(default)]
    pub mode: QueueMode,
    /// The admission rate follows the backend's health (see `autopilot`); absent: the
    /// rate is `rate_per_second`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autopilot: Option<AutopilotConfig>,
    /// A new place in line costs a solved proof-of-work challenge (see
    /// `wr_pass::pow`); absent: joining is free. Raise the difficulty mid-sale with the
    /// same `PUT`: solutions of easier challenges stop taking places at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_of_work: Option<ProofOfWork>,
}

/// An event's proof of work at join.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProofOfWork {
    /// Leading zero bits of SHA-256 a solution must have: about 2^difficulty hashes
    /// to find one (1 – 28).
    pub difficulty: u8,
}

/// An event's autopilot: the backend's target and the bounds of the admission rate.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AutopilotConfig {
    /// False: the rate is `rate_per_second` (the switch to turn it off mid-sale).
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// The backend's 95th-percentile response time to keep within, ms (10 – 60,000).
    pub target_p95_ms: u32,
    /// The share of error responses to keep within (0 – 0.5; default 0.01).
    #[serde(default = "default_max_error_share")]
    pub max_error_share: f64,
    /// The lowest admission rate (per second): the line never stops.
    pub min_rate: f64,
    /// The highest admission rate (per second).
    pub max_rate: f64,
}

fn enabled() -> bool {
    true
}

fn default_max_error_share() -> f64 {
    0.01
}

impl AutopilotConfig {
    fn problems(&self, p: &mut Vec<String>) {
        if !(10..=60_000).contains(&self.target_p95_ms) {
            p.push("autopilot.target_p95_ms: between 10 and 60000".to_owned());
        }
        if !(0.0..=0.5).contains(&self.max_error_share) {
            p.push("autopilot.max_error_share: between 0 and 0.5".to_owned());
        }
        for (name, rate) in [("min_rate", self.min_rate), ("max_rate", self.max_rate)] {
            if !(0.01..=100_000.0).contains(&rate) {
                p.push(format!("autopilot.{name}: between 0.01 and 100000"));
            }
        }
        if self.min_rate > self.max_rate {
            p.push("autopilot.min_rate: must not exceed max_rate".to_owned());
        }
    }
}

impl EventConfig {
    /// Every problem with the values, one line each. `max_pass_lifetime_seconds` is the
    /// longest pass the edge accepts: a pass lives as long as the session.
    pub fn problems(&self, max_pass_lifetime_seconds: u64) -> Vec<String> {
        let mut p = Vec::new();
        if !(0.01..=100_000.0).contains(&self.rate_per_second) {
            p.push("rate_per_second: between 0.01 and 100000".to_owned());
        }
        let ranges: [(&str, u64, u64, u64); 5] = [
            ("burst", self.burst, 1, 100_000),
            ("max_active", self.max_active, 1, 10_000_000),
            ("session_seconds", self.session_seconds, 10, 86_400),
            ("claim_seconds", self.claim_seconds, 5, 3_600),
            ("abandon_seconds", self.abandon_seconds, 5, 3_600),
        ];
        for (name, value, lo, hi) in ranges {
            if !(lo..=hi).contains(&value) {
                p.push(format!("{name}: between {lo} and {hi}"));
            }
        }
        if self.session_seconds > max_pass_lifetime_seconds {
            p.push(format!(
                "session_seconds: at most {max_pass_lifetime_seconds} (max_pass_lifetime_seconds: a pass lives as long as the session, and the edge refuses longer ones)"
            ));
        }
        if self.closes_at <= self.opens_at {
            p.push("closes_at: must be after opens_at".to_owned());
        }
        if self.prequeue_opens_at.is_some_and(|at| at >= self.opens_at) {
            p.push("prequeue_opens_at: must be before opens_at".to_owned());
        }
        if let Some(autopilot) = &self.autopilot {
            autopilot.problems(&mut p);
        }
        if let Some(pow) = &self.proof_of_work {
            let (lo, hi) = (wr_pass::pow::MIN_DIFFICULTY, wr_pass::pow::MAX_DIFFICULTY);
            if !(lo..=hi).contains(&pow.difficulty) {
                p.push(format!("proof_of_work.difficulty: between {lo} and {hi} (leading zero bits; about 2^difficulty hashes per join)"));
            }
        }
        p
    }

    /// The autopilot, if it is on.
    pub fn active_autopilot(&self) -> Option<&AutopilotConfig> {
        self.autopilot.as_ref().filter(|a| a.enabled)
    }

    /// The fields of the configuration hash the scripts read (see `event.lua`).
    pub(super) fn hash_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("rate", self.rate_per_second.to_string()),
            ("burst", self.burst.to_string()),
            ("max_active", self.max_active.to_string()),
            ("session_ms", (self.session_seconds * 1000).to_string()),
            ("claim_ms", (self.claim_seconds * 1000).to_string()),
            ("abandon_ms", (self.abandon_seconds * 1000).to_string()),
            ("opens_at_ms", (self.opens_at * 1000).to_string()),
            ("closes_at_ms", (self.closes_at * 1000).to_string()),
            (
                "prequeue_opens_at_ms",
                (self.prequeue_opens_at.unwrap_or(0) * 1000).to_string(),
            ),
            ("mode", self.mode.name().to_owned()),
            (
                "pow_bits",
                self.proof_of_work.map_or(0, |p| p.difficulty).to_string(),
            ),
            // The autopilot's bounds, for `event.lua`: 0/0 when it is off.
            (
                "ap_min",
                self.active_autopilot()
                    .map_or(0.0, |a| a.min_rate)
                    .to_string(),
            ),
            (
                "ap_max",
                self.active_autopilot()
                    .map_or(0.0, |a| a.max_rate)
                    .to_string(),
            ),
        ]
        .into_iter()
        // Switched off, the autopilot forgets its rate: switched on again, it starts
        // from the configured one.
        .chain(
            self.active_autopilot()
                .is_none()
                .then(|| ("ap_rate", String::new())),
        )
        .chain([("json", serde_json::to_string(self).unwrap_or_default())])
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EventConfig {
        EventConfig {
            rate_per_second: 10.0,
            burst: 10,
            max_active: 100,
            session_seconds: 600,
            claim_seconds: 60,
            abandon_seconds: 60,
            opens_at: 5,
            closes_at: 10,
            prequeue_opens_at: None,
            mode: QueueMode::Fifo,
            autopilot: None,
            proof_of_work: None,
        }
    }

    #[test]
    fn an_autopilot_out_of_range_lists_every_problem() {
        let mut c = config();
        c.autopilot = Some(AutopilotConfig {
            enabled: true,
            target_p95_ms: 5,
            max_error_share: 0.9,
            min_rate: 50.0,
            max_rate: 0.0,
        });
        let problems = c.problems(3600).join("\n");
        for field in ["target_p95_ms", "max_error_share", "max_rate", "min_rate"] {
            assert!(
                problems.contains(&format!("autopilot.{field}")),
                "{problems}"
            );
        }
    }

    #[test]
    fn a_sound_configuration_has_no_problems() {
        assert!(config().problems(3600).is_empty());
    }

    #[test]
    fn every_problem_is_listed() {
        let bad = EventConfig {
            rate_per_second: 0.0,
            burst: 0,
            closes_at: 0,
            ..config()
        };
        let problems = bad.problems(3600);
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn a_prequeue_opening_at_or_after_the_opening_is_refused() {
        let late = EventConfig {
            prequeue_opens_at: Some(5),
            ..config()
        };
        assert_eq!(
            late.problems(3600),
            ["prequeue_opens_at: must be before opens_at"]
        );
    }

    #[test]
    fn a_configuration_without_mode_or_prequeue_is_fifo_without_prequeue() {
        let old = r#"{"rate_per_second":5.0,"burst":5,"max_active":10,"session_seconds":60,"claim_seconds":30,"abandon_seconds":30,"opens_at":0,"closes_at":9}"#;
        let config: EventConfig = serde_json::from_str(old).unwrap();
        assert_eq!(
            (config.mode, config.prequeue_opens_at),
            (QueueMode::Fifo, None)
        );
    }

    #[test]
    fn an_unknown_mode_is_refused() {
        let bad = r#"{"rate_per_second":5.0,"burst":5,"max_active":10,"session_seconds":60,"claim_seconds":30,"abandon_seconds":30,"opens_at":0,"closes_at":9,"mode":"lottery"}"#;
        assert!(serde_json::from_str::<EventConfig>(bad).is_err());
    }

    #[test]
    fn a_session_longer_than_the_edge_accepts_is_refused() {
        let problems = config().problems(300);
        assert!(problems[0].starts_with("session_seconds: at most 300"));
    }
}
