//! Prometheus metrics, rendered as text at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::autopilot::law::{Reading, Reason};
use crate::store::{Phase, Prequeue, QueueMode, Step};
use crate::wait::eta_record::RangeResult;

/// Latency histogram bucket bounds, seconds.
const LATENCY: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
/// ETA relative error bucket bounds (0.1 = within 10 %).
const RELATIVE: &[f64] = &[0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0];

/// The autopilot's figures: what it read, and per event its rate and its steps.
fn render_autopilot(out: &mut String, m: &Inner) {
    if let Some(reading) = m.autopilot_reading {
        out.push_str("# TYPE wr_autopilot_signal gauge\n");
        let state = match reading {
            Reading::Fresh(_) => "fresh",
            Reading::Thin => "thin",
            Reading::Missing => "missing",
        };
        for each in ["fresh", "thin", "missing"] {
            let on = u8::from(each == state);
            let _ = writeln!(out, "wr_autopilot_signal{{state=\"{each}\"}} {on}");
        }
        if let Reading::Fresh(s) = reading {
            out.push_str("# TYPE wr_autopilot_backend_p95_seconds gauge\n");
            let _ = writeln!(
                out,
                "wr_autopilot_backend_p95_seconds {}",
                s.p95_ms / 1000.0
            );
            out.push_str("# TYPE wr_autopilot_backend_error_share gauge\n");
            let _ = writeln!(out, "wr_autopilot_backend_error_share {}", s.error_share);
        }
    }
    out.push_str("# TYPE wr_autopilot_rate gauge\n");
    for (event, rate) in &m.autopilot_rates {
        let _ = writeln!(out, "wr_autopilot_rate{{event=\"{event}\"}} {rate}");
    }
    out.push_str("# TYPE wr_autopilot_steps_total counter\n");
    for ((event, reason), n) in &m.autopilot_steps {
        let _ = writeln!(
            out,
            "wr_autopilot_steps_total{{event=\"{event}\",reason=\"{reason}\"}} {n}"
        );
    }
}

/// Every phase, with its `phase` label (as `event_phase` in `event.lua` names it).
const PHASES: [(Phase, &str); 4] = [
    (Phase::Scheduled, "scheduled"),
    (Phase::Open, "open"),
    (Phase::Paused, "paused"),
    (Phase::Closed, "closed"),
];

/// Per event, from the last admission step: where it stands, the rate in force and
/// `max_active`: `wr_event_phase`, `wr_admission_rate`, `wr_max_active`.
fn render_limits(out: &mut String, m: &Inner) {
    out.push_str("# TYPE wr_event_phase gauge\n");
    for (event, (phase, _, _)) in &m.limits {
        for (each, name) in PHASES {
            let on = u8::from(Some(each) == *phase);
            let _ = writeln!(
                out,
                "wr_event_phase{{event=\"{event}\",phase=\"{name}\"}} {on}"
            );
        }
    }
    out.push_str("# TYPE wr_admission_rate gauge\n");
    for (event, (_, rate, _)) in &m.limits {
        let _ = writeln!(out, "wr_admission_rate{{event=\"{event}\"}} {rate}");
    }
    out.push_str("# TYPE wr_max_active gauge\n");
    for (event, (_, _, max_active)) in &m.limits {
        let _ = writeln!(out, "wr_max_active{{event=\"{event}\"}} {max_active}");
    }
    out.push_str("# TYPE wr_admission_errors_total counter\n");
    for (event, n) in &m.step_errors {
        let _ = writeln!(out, "wr_admission_errors_total{{event=\"{event}\"}} {n}");
    }
}

/// The relative ETA error counted as good: within ±20 %.
pub const ETA_GOOD: f64 = 0.2;

/// This process's figures for the operator console, cumulative since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ConsoleFigures {
    /// Admissions whose actual wait was within ±20 % of the ETA shown.
    pub eta_good: u64,
    /// Admissions whose ETA was judged.
    pub eta_judged: u64,
    /// Requests refused by an in-flight cap (503 `QUEUE_BUSY`).
    pub shed: u64,
    /// Requests answered 429 (rate limits).
    pub rate_limited: u64,
    /// Requests answered 503 (shed, or Redis unavailable).
    pub unavailable: u64,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EndCause {
    /// The backend ended it (the session-end header through the edge, or its own call).
    Backend,
    /// It ran out.
    Timeout,
    /// The visitor left with their ticket.
    Left,
}

impl EndCause {
    /// The `cause` label.
    pub fn name(self) -> &'static str {
        match self {
            EndCause::Backend => "backend",
            EndCause::Timeout => "timeout",
            EndCause::Left => "left",
        }
    }
}

struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            count: 0,
            sum: 0.0,
        }
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new(LATENCY)
    }
}

/// One route's figures.
#[derive(Default)]
struct Route {
    statuses: BTreeMap<u16, u64>,
    latency: Histogram,
}

struct Inner {
    /// Per route: the latency histogram and the count per status.
    routes: BTreeMap<String, Route>,
    admitted: BTreeMap<String, u64>,
    abandoned: BTreeMap<String, u64>,
    lapsed: BTreeMap<String, u64>,
    /// Per event: (waiting, granted, active) after the last admission step.
    sizes: BTreeMap<String, (u64, u64, u64)>,
    /// Per event: the mode and the pre-queue state at the last admission step.
    modes: BTreeMap<String, (QueueMode, Prequeue)>,
    /// Per event: the phase, the rate in force and `max_active` at the last step.
    limits: BTreeMap<String, (Option<Phase>, f64, u64)>,
    /// Per event: admission steps that failed (Redis unreachable, a bad reply).
    step_errors: BTreeMap<String, u64>,
    /// Per event: passthrough's dry run, (waiting now, admitted, waits summed ms).
    dry_runs: BTreeMap<String, (u64, u64, u64)>,
    eta_error: Histogram,
    /// Admissions by how their actual wait compared with the range shown at join.
    eta_range: [u64; RangeResult::ALL.len()],
    /// Requests refused by an in-flight cap, per cap (`join`, `poll`).
    shed: BTreeMap<&'static str, u64>,
    /// Per (event, cause): sessions this process saw end.
    sessions_ended: BTreeMap<(String, EndCause), u64>,
    /// The autopilot's last reading of the backend.
    autopilot_reading: Option<Reading>,
    /// Per event: the autopilot's rate after its last step here.
    autopilot_rates: BTreeMap<String, f64>,
    /// Per (event, reason): the autopilot's steps here.
    autopilot_steps: BTreeMap<(String, &'static str), u64>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            routes: BTreeMap::new(),
            admitted: BTreeMap::new(),
            abandoned: BTreeMap::new(),
            lapsed: BTreeMap::new(),
            sizes: BTreeMap::new(),
            modes: BTreeMap::new(),
            limits: BTreeMap::new(),
            step_errors: BTreeMap::new(),
            dry_runs: BTreeMap::new(),
            eta_error: Histogram::new(RELATIVE),
            eta_range: [0; RangeResult::ALL.len()],
            shed: BTreeMap::new(),
            sessions_ended: BTreeMap::new(),
            autopilot_reading: None,
            autopilot_rates: BTreeMap::new(),
            autopilot_steps: BTreeMap::new(),
        }
    }
}

/// Process-wide counters.
#[derive(Default)]
pub struct Metrics(Mutex<Inner>);

impl Metrics {
    /// Counts one request of `route` answered with `status` after `elapsed`.
    pub fn record_request(&self, route: &str, status: u16, elapsed: Duration) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // The route's name is allocated once, on its first request.
        if !m.routes.contains_key(route) {
            m.routes.insert(route.to_owned(), Route::default());
        }
        if let Some(figures) = m.routes.get_mut(route) {
            *figures.statuses.entry(status).or_default() += 1;
            observe(&mut figures.latency, elapsed.as_secs_f64());
        }
    }

    /// Adds an admission step's counts.
    pub fn record_step(&self, event: &str, step: Step) {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let m = &mut *guard;
        m.sizes
            .insert(event.to_owned(), (step.waiting, step.granted, step.active));
        m.modes.insert(event.to_owned(), (step.mode, step.prequeue));
        m.limits
            .insert(event.to_owned(), (step.phase, step.rate, step.max_active));
        m.step_errors.entry(event.to_owned()).or_default();
        if step.mode == QueueMode::Passthrough || m.dry_runs.contains_key(event) {
            let dry = m.dry_runs.entry(event.to_owned()).or_default();
            dry.0 = step.dry_waiting;
            dry.1 += step.dry_admitted;
            dry.2 += step.dry_wait_ms;
        }
        if step.ended > 0 {
            *m.sessions_ended
                .entry((event.to_owned(), EndCause::Timeout))
                .or_default() += step.ended;
        }
        for (map, n) in [
            (&mut m.admitted, step.admitted),
            (&mut m.abandoned, step.abandoned),
            (&mut m.lapsed, step.lapsed),
        ] {
            if n > 0 || !map.contains_key(event) {
                *map.entry(event.to_owned()).or_default() += n;
            }
        }
    }

    /// Counts an admission step of `event` that failed (Redis unreachable, a bad reply).
    pub fn record_step_error(&self, event: &str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *m.step_errors.entry(event.to_owned()).or_default() += 1;
    }

    /// Records a session of `event` that ended by `cause` (the backend's report or call,
    /// or the visitor leaving; timeouts are counted with the admission step).
    pub fn record_session_ended(&self, event: &str, cause: EndCause) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *m.sessions_ended
            .entry((event.to_owned(), cause))
            .or_default() += 1;
    }

    /// Records what the autopilot read of the backend this period.
    pub fn record_autopilot_signal(&self, reading: Reading) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.autopilot_reading = Some(reading);
    }

    /// Records one autopilot step of `event`.
    pub fn record_autopilot_step(&self, event: &str, rate: f64, reason: Reason) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.autopilot_rates.insert(event.to_owned(), rate);
        *m.autopilot_steps
            .entry((event.to_owned(), reason.name()))
            .or_default() += 1;
    }

    /// `event`'s autopilot is off: its rate is no longer shown.
    pub fn forget_autopilot(&self, event: &str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.autopilot_rates.remove(event);
    }

    /// Records |actual − predicted| / actual for an admitted visitor.
    pub fn record_eta_error(&self, relative_error: f64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        observe(&mut m.eta_error, relative_error);
    }

    /// Counts an admission by how its actual wait compared with the range it was shown
    /// at join.
    pub fn record_eta_range(&self, result: RangeResult) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.eta_range[result as usize] += 1;
    }

    /// Counts a request refused by the in-flight cap named `cap`.
    pub fn record_shed(&self, cap: &'static str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *m.shed.entry(cap).or_default() += 1;
    }

    /// What the operator console charts of this process (cumulative since start).
    pub fn console_figures(&self) -> ConsoleFigures {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let within = RELATIVE.iter().position(|b| *b == ETA_GOOD);
        let statuses = |code: u16| -> u64 {
            m.routes
                .values()
                .map(|r| r.statuses.get(&code).copied().unwrap_or(0))
                .sum()
        };
        ConsoleFigures {
            eta_good: within.map_or(0, |i| m.eta_error.counts[i]),
            eta_judged: m.eta_error.count,
            shed: m.shed.values().sum(),
            rate_limited: statuses(429),
            unavailable: statuses(503),
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str("# TYPE wr_http_requests_total counter\n");
        for (route, figures) in &m.routes {
            for (status, n) in &figures.statuses {
                let _ = writeln!(
                    out,
                    "wr_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# TYPE wr_http_request_duration_seconds histogram\n");
        for (route, figures) in &m.routes {
            write_histogram(
                &mut out,
                "wr_http_request_duration_seconds",
                &format!("route=\"{route}\""),
                &figures.latency,
            );
        }
        for (name, map) in [
            ("wr_admitted_total", &m.admitted),
            ("wr_abandoned_total", &m.abandoned),
            ("wr_grants_lapsed_total", &m.lapsed),
        ] {
            let _ = writeln!(out, "# TYPE {name} counter");
            for (event, n) in map {
                let _ = writeln!(out, "{name}{{event=\"{event}\"}} {n}");
            }
        }
        for (name, pick) in [
            ("wr_waiting", 0),
            ("wr_granted", 1),
            ("wr_active_sessions", 2),
        ] {
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (event, sizes) in &m.sizes {
                let value = [sizes.0, sizes.1, sizes.2][pick];
                let _ = writeln!(out, "{name}{{event=\"{event}\"}} {value}");
            }
        }
        out.push_str("# TYPE wr_event_mode gauge\n");
        for (event, (mode, _)) in &m.modes {
            for each in QueueMode::ALL {
                let on = u8::from(each == *mode);
                let _ = writeln!(
                    out,
                    "wr_event_mode{{event=\"{event}\",mode=\"{}\"}} {on}",
                    each.name()
                );
            }
        }
        out.push_str("# TYPE wr_prequeue_state gauge\n");
        for (event, (_, prequeue)) in &m.modes {
            for each in Prequeue::ALL {
                let on = u8::from(each == *prequeue);
                let _ = writeln!(
                    out,
                    "wr_prequeue_state{{event=\"{event}\",state=\"{}\"}} {on}",
                    each.name()
                );
            }
        }
        for (name, pick, kind) in [
            ("wr_dry_run_waiting", 0, "gauge"),
            ("wr_dry_run_admitted_total", 1, "counter"),
            ("wr_dry_run_wait_seconds_total", 2, "counter"),
        ] {
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (event, dry) in &m.dry_runs {
                let value = match pick {
                    0 => dry.0 as f64,
                    1 => dry.1 as f64,
                    _ => dry.2 as f64 / 1000.0,
                };
                let _ = writeln!(out, "{name}{{event=\"{event}\"}} {value}");
            }
        }
        out.push_str("# TYPE wr_sessions_ended_total counter\n");
        for ((event, cause), n) in &m.sessions_ended {
            let _ = writeln!(
                out,
                "wr_sessions_ended_total{{event=\"{event}\",cause=\"{}\"}} {n}",
                cause.name()
            );
        }
        render_limits(&mut out, &m);
        render_autopilot(&mut out, &m);
        out.push_str("# TYPE wr_shed_total counter\n");
        for (cap, n) in &m.shed {
            let _ = writeln!(out, "wr_shed_total{{cap=\"{cap}\"}} {n}");
        }
        out.push_str("# TYPE wr_eta_relative_error histogram\n");
        write_histogram(&mut out, "wr_eta_relative_error", "", &m.eta_error);
        out.push_str("# TYPE wr_eta_range_total counter\n");
        for (result, n) in RangeResult::ALL.iter().zip(m.eta_range) {
            let label = result.label();
            let _ = writeln!(out, "wr_eta_range_total{{result=\"{label}\"}} {n}");
        }
        out
    }
}

fn observe(h: &mut Histogram, value: f64) {
    for (i, bound) in h.bounds.iter().enumerate() {
        if value <= *bound {
            h.counts[i] += 1;
        }
    }
    h.count += 1;
    h.sum += value;
}

fn write_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, n) in h.bounds.iter().zip(&h.counts) {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum);
    let _ = writeln!(out, "{name}_count{braces} {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phase_the_rate_in_force_and_max_active_are_shown_per_event() {
        let metrics = Metrics::default();
        let step = Step {
            waiting: 4,
            phase: Some(Phase::Paused),
            rate: 12.5,
            max_active: 300,
            ..Step::default()
        };
        metrics.record_step("concert", step);
        let text = metrics.render();
        for line in [
            "wr_event_phase{event=\"concert\",phase=\"paused\"} 1",
            "wr_event_phase{event=\"concert\",phase=\"open\"} 0",
            "wr_admission_rate{event=\"concert\"} 12.5",
            "wr_max_active{event=\"concert\"} 300",
            "wr_admission_errors_total{event=\"concert\"} 0",
            "wr_waiting{event=\"concert\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        metrics.record_step_error("concert");
        let text = metrics.render();
        assert!(text.contains("wr_admission_errors_total{event=\"concert\"} 1\n"));
    }
}
