//! A simulated sale against a running origin-queue: visitors arrive one after another
//! (so arrival order is known exactly), poll as told, some walk away, and the operator
//! changes the admission rate half-way. The report is what the product promises:
//! FIFO inversions (must be 0), admitted rate vs configured rate, and ETA accuracy.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::http::Target;
use crate::processes::{origin_queue_release_bin, OriginQueue, RedisCluster};

/// A fresh local Redis Cluster and origin-queue (release build) for a simulated sale:
/// every visitor comes from one address, so the per-client and per-visitor limits are
/// lifted.
pub fn simulation_queue() -> (RedisCluster, OriginQueue) {
    let cluster = RedisCluster::start();
    let settings = [
        ("WR_CLIENT_RATE_LIMIT", "1000000:1000000"),
        ("WR_VISITOR_RATE_LIMIT", "1000000:1000000"),
        ("WR_LOG", "error"),
    ];
    let q = OriginQueue::start_binary(&origin_queue_release_bin(), &cluster.nodes, &settings);
    (cluster, q)
}

pub use crate::fixtures::env_number;

/// How the sale goes; `A` is where the admin API answers (an address, or the router
/// in-process).
#[derive(Clone, Debug)]
pub struct Plan<A = SocketAddr> {
    /// Event id.
    pub event: String,
    /// Visitors who join.
    pub visitors: usize,
    /// Time over which they arrive.
    pub arrival_window: Duration,
    /// Admissions per second at the start…
    pub rate_before: f64,
    /// …and after the change.
    pub rate_after: f64,
    /// The change happens once this share of visitors was admitted.
    pub change_at_share: f64,
    /// Once this share was admitted, `max_active` becomes this (sessions then limit
    /// admission instead of the rate); `None`: never.
    pub limit_at_share: Option<(f64, u64)>,
    /// `session_seconds` of the event (`max_active` is 1,000,000 until the limit).
    pub session_seconds: u64,
    /// Everybody joins while admission is paused (a full line at the start); admission
    /// resumes once the last has joined.
    pub start_paused: bool,
    /// Every n-th visitor stops polling after joining (0: nobody).
    pub abandon_every: usize,
    /// `abandon_seconds` of the event.
    pub abandon_seconds: u64,
    /// Give up after this long.
    pub deadline: Duration,
    /// Bearer token of the admin API.
    pub admin_token: String,
    /// Where the admin API answers: origin-queue's own port (it is not reachable
    /// through the edge), or the router in-process.
    pub admin_addr: A,
    /// Once admitted, each visitor opens this path with its pass (through the edge).
    pub protected_path: Option<String>,
}

/// The figures.
#[derive(Debug, Default)]
pub struct Report {
    /// Visitors who joined.
    pub joined: usize,
    /// Of those, admitted.
    pub admitted: usize,
    /// Of those, designed to abandon.
    pub abandoned: usize,
    /// Admitted visitors overtaken by someone who arrived later.
    pub fifo_inversions: usize,
    /// Observed admissions per second before and after the change (server grant times).
    pub observed_rates: (f64, f64),
    /// Share of admitted visitors whose wait was within ±10 % / ±20 % of the ETA at join.
    pub eta_within: (f64, f64),
    /// Mean absolute percentage error of the ETA at join.
    pub eta_mape: f64,
    /// The admitted, in arrival order.
    pub admitted_in_arrival_order: Vec<Admitted>,
    /// When the rate changed and when `max_active` started to limit (wall ms).
    pub changed_at_ms: (Option<u64>, Option<u64>),
    /// Every estimate an admitted visitor was shown (at join and at each poll), with
    /// the wait that followed.
    pub shown: Vec<Shown>,
}

/// One admitted visitor.
#[derive(Clone, Debug)]
pub struct Admitted {
    /// The visitor id (as the backend sees it).
    pub id: String,
    /// How long after it was due (the `poll_after_ms` it was told) this test's client
    /// sent the poll that found the visitor admitted, plus how long that poll took:
    /// the client's own lateness on a busy machine, not the queue's.
    pub client_late_ms: u64,
}

/// One estimate shown to a visitor who was later admitted.
#[derive(Clone, Copy, Debug)]
pub struct Shown {
    /// When it was shown (wall ms).
    pub at_ms: u64,
    /// Shown in the answer to the join (else to a poll).
    pub at_join: bool,
    /// The estimate (`eta_ms`), ms.
    pub eta_ms: f64,
    /// The range's ends, ms; no high end while paused.
    pub range_ms: Option<(f64, Option<f64>)>,
    /// The wait that followed: from `at_ms` to the grant, ms.
    pub actual_ms: f64,
}

impl Shown {
    /// The estimate was within `share` of the wait that followed.
    pub fn within(&self, share: f64) -> bool {
        (self.eta_ms - self.actual_ms).abs() <= share * self.actual_ms
    }

    /// The range held the wait that followed (`None`: no range shown).
    pub fn in_range(&self) -> Option<bool> {
        let (low, high) = self.range_ms?;
        Some(self.actual_ms >= low && high.is_none_or(|high| self.actual_ms <= high))
    }

    fn from_body(at_ms: u64, at_join: bool, body: &serde_json::Value) -> Option<Shown> {
        // Builds before `eta_ms` sent whole seconds only.
        let eta_ms = body["eta_ms"]
            .as_f64()
            .or_else(|| body["eta_seconds"].as_f64().map(|s| s * 1000.0))?;
        let range = &body["eta_range_seconds"];
        let range_ms = range[0]
            .as_f64()
            .map(|low| (low * 1000.0, range[1].as_f64().map(|high| high * 1000.0)));
        Some(Shown {
            at_ms,
            at_join,
            eta_ms,
            range_ms,
            actual_ms: f64::NAN,
        })
    }
}

struct Visitor {
    arrival: usize,
    id: String,
    ticket: String,
    joined_ms: u64,
    eta_secs: f64,
    abandons: bool,
    next_poll: Instant,
    admitted_at_ms: Option<u64>,
    client_late_ms: u64,
    shown: Vec<Shown>,
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn configure<A: Target>(plan: &Plan<A>, rate: f64, max_active: u64, opens_at: u64) {
    let now = wall_ms() / 1000;
    let cfg = json!({"rate_per_second": rate, "burst": 1, "max_active": max_active,
        "session_seconds": plan.session_seconds, "claim_seconds": 60,
        "abandon_seconds": plan.abandon_seconds, "opens_at": opens_at, "closes_at": now + 7200});
    admin(plan, "PUT", "", &cfg.to_string());
}

fn admin<A: Target>(plan: &Plan<A>, method: &str, tail: &str, body: &str) {
    let auth = format!("Bearer {}", plan.admin_token);
    let r = plan
        .admin_addr
        .request(
            method,
            &format!("/v1/admin/events/{}{tail}", plan.event),
            &[("authorization", auth.as_bytes())],
            body.as_bytes(),
        )
        .expect("admin call");
    assert_eq!(r.status, 200, "{:?}", r.json());
}

/// `max_active` until the limit applies.
const UNLIMITED: u64 = 1_000_000;

/// Runs the sale against `addr` (origin-queue, an edge in front of it, or the router
/// in-process) and reports. Panics on transport errors (the stack is local).
pub fn run<T, A>(addr: T, plan: &Plan<A>) -> Report
where
    T: Target + Send + Sync,
    A: Target,
{
    thread::scope(|scope| run_in(scope, addr, plan))
}

fn run_in<'scope, T, A>(scope: &'scope thread::Scope<'scope, '_>, addr: T, plan: &Plan<A>) -> Report
where
    T: Target + Send + Sync + 'scope,
    A: Target,
{
    configure(plan, plan.rate_before, UNLIMITED, wall_ms() / 1000 - 1);
    if plan.start_paused {
        admin(plan, "POST", "/pause", "");
    }
    let visitors: Arc<Mutex<Vec<Visitor>>> = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // Pollers: poll every due visitor, as told by poll_after_ms.
    let pollers: Vec<_> = (0..4)
        .map(|worker| {
            let (visitors, done, event) = (visitors.clone(), done.clone(), plan.event.clone());
            let protected = plan.protected_path.clone();
            scope.spawn(move || {
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    let due: Vec<(usize, String, Instant)> = {
                        let list = visitors.lock().unwrap();
                        list.iter()
                            .enumerate()
                            .filter(|(i, v)| {
                                i % 4 == worker
                                    && !v.abandons
                                    && v.admitted_at_ms.is_none()
                                    && v.next_poll <= Instant::now()
                            })
                            .map(|(i, v)| (i, v.ticket.clone(), v.next_poll))
                            .collect()
                    };
                    for (i, ticket, due_at) in due {
                        let r = addr
                            .get(
                                &format!("/v1/events/{event}/status"),
                                &[("x-wr-ticket", ticket.as_bytes())],
                            )
                            .expect("status");
                        let body = r.json();
                        let mut list = visitors.lock().unwrap();
                        let v = &mut list[i];
                        match (r.status, body["status"].as_str()) {
                            (200, Some("admitted")) => {
                                v.client_late_ms =
                                    Instant::now().saturating_duration_since(due_at).as_millis()
                                        as u64;
                                v.admitted_at_ms =
                                    Some(body["admitted_at_ms"].as_u64().unwrap_or_else(wall_ms));
                                if let Some(path) = &protected {
                                    let cookie =
                                        format!("wr_pass={}", body["pass"].as_str().unwrap_or(""));
                                    let r = addr
                                        .get(
                                            path,
                                            &[
                                                ("cookie", cookie.as_bytes()),
                                                ("accept", b"application/json"),
                                            ],
                                        )
                                        .expect("protected page");
                                    assert_eq!(
                                        r.status,
                                        200,
                                        "visitor {i} with a pass was refused: {:?}",
                                        r.json()
                                    );
                                }
                            }
                            (429 | 503, _) => {
                                let secs: u64 = r
                                    .header("retry-after")
                                    .and_then(|s| s.parse().ok())
                                    .unwrap_or(1);
                                v.next_poll = Instant::now() + Duration::from_secs(secs);
                            }

                            (200, Some("waiting")) => {
                                v.shown.extend(Shown::from_body(wall_ms(), false, &body));
                                v.next_poll = Instant::now()
                                    + Duration::from_millis(
                                        body["poll_after_ms"].as_u64().unwrap_or(1000),
                                    );
                            }
                            (status, other) => {
                                panic!("visitor {i}: status {status} {other:?}: {body}")
                            }
                        }
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();

    // Arrivals, strictly one after another.
    let gap = plan.arrival_window.as_secs_f64() / plan.visitors.max(1) as f64;
    for arrival in 0..plan.visitors {
        let joined_ms = wall_ms();
        let r = addr
            .request("POST", &format!("/v1/events/{}/join", plan.event), &[], b"")
            .expect("join");
        assert_eq!(r.status, 200, "join: {:?}", r.json());
        let body = r.json();
        visitors.lock().unwrap().push(Visitor {
            arrival,
            id: body["visitor"].as_str().unwrap_or_default().to_owned(),
            ticket: r.header("x-wr-ticket").expect("ticket").to_owned(),
            joined_ms,
            eta_secs: body["eta_ms"]
                .as_f64()
                .map(|ms| ms / 1000.0)
                .or_else(|| body["eta_seconds"].as_f64())
                .unwrap_or(f64::NAN),
            abandons: plan.abandon_every > 0
                && arrival % plan.abandon_every == plan.abandon_every - 1,
            next_poll: Instant::now()
                + Duration::from_millis(body["poll_after_ms"].as_u64().unwrap_or(1000)),
            admitted_at_ms: None,
            client_late_ms: 0,
            shown: Shown::from_body(joined_ms, true, &body)
                .into_iter()
                .collect(),
        });
        let target = started + Duration::from_secs_f64(gap * (arrival + 1) as f64);
        if let Some(wait) = target.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }

    if plan.start_paused {
        admin(plan, "POST", "/resume", "");
    }
    // Change the rate once enough were admitted; stop when everybody who polls is in.
    let stays = plan.visitors
        - visitors
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v.abandons)
            .count();
    let mut changed_at_ms = None;
    let mut limited_at_ms = None;
    while started.elapsed() < plan.deadline {
        let admitted = visitors
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v.admitted_at_ms.is_some())
            .count();
        let share = admitted as f64 / stays as f64;
        if changed_at_ms.is_none() && share >= plan.change_at_share {
            let max_active = if limited_at_ms.is_some() {
                plan.limit_at_share.map_or(UNLIMITED, |l| l.1)
            } else {
                UNLIMITED
            };
            configure(plan, plan.rate_after, max_active, wall_ms() / 1000 - 3600);
            changed_at_ms = Some(wall_ms());
        }
        if let Some((at_share, max_active)) = plan.limit_at_share {
            if limited_at_ms.is_none() && share >= at_share {
                let rate = if changed_at_ms.is_some() {
                    plan.rate_after
                } else {
                    plan.rate_before
                };
                configure(plan, rate, max_active, wall_ms() / 1000 - 3600);
                limited_at_ms = Some(wall_ms());
            }
        }
        if admitted >= stays {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    for p in pollers {
        p.join().expect("a poller panicked");
    }
    let list = visitors.lock().unwrap();
    let mut r = report(&list, changed_at_ms.unwrap_or(u64::MAX));
    r.changed_at_ms = (changed_at_ms, limited_at_ms);
    r
}

fn report(visitors: &[Visitor], changed_at_ms: u64) -> Report {
    let admitted: Vec<&Visitor> = visitors
        .iter()
        .filter(|v| v.admitted_at_ms.is_some())
        .collect();
    let mut r = Report {
        joined: visitors.len(),
        admitted: admitted.len(),
        abandoned: visitors.iter().filter(|v| v.abandons).count(),
        admitted_in_arrival_order: admitted
            .iter()
            .map(|v| Admitted {
                id: v.id.clone(),
                client_late_ms: v.client_late_ms,
            })
            .collect(),
        shown: admitted
            .iter()
            .flat_map(|v| {
                let granted = v.admitted_at_ms.unwrap_or(0) as f64;
                v.shown.iter().map(move |s| Shown {
                    actual_ms: granted - s.at_ms as f64,
                    ..*s
                })
            })
            .collect(),
        ..Report::default()
    };

    // FIFO: in arrival order, grant times never go backwards.
    let mut latest = 0;
    for v in &admitted {
        let at = v.admitted_at_ms.unwrap_or(0);
        if at < latest {
            r.fifo_inversions += 1;
        }
        latest = latest.max(at);
    }
    let rate_in = |from: u64, to: u64| {
        let times: Vec<u64> = admitted
            .iter()
            .filter_map(|v| v.admitted_at_ms)
            .filter(|t| *t >= from && *t < to)
            .collect();
        match (times.iter().min(), times.iter().max()) {
            (Some(a), Some(b)) if b > a => (times.len() - 1) as f64 / ((b - a) as f64 / 1000.0),
            _ => 0.0,
        }
    };
    r.observed_rates = (
        rate_in(0, changed_at_ms),
        rate_in(changed_at_ms.saturating_add(1000), u64::MAX),
    );
    if std::env::var_os("WR_SALE_DUMP").is_some() {
        for v in admitted.iter().step_by(10) {
            let actual = v.admitted_at_ms.unwrap_or(0) as f64 - v.joined_ms as f64;
            eprintln!(
                "arrival {:4} eta {:6.1}s actual {:6.1}s",
                v.arrival,
                v.eta_secs,
                actual / 1000.0
            );
        }
    }
    let errors: Vec<f64> = admitted
        .iter()
        .filter_map(|v| {
            let actual = v.admitted_at_ms? as f64 - v.joined_ms as f64;
            (actual > 500.0 && v.eta_secs.is_finite())
                .then(|| (actual - v.eta_secs * 1000.0).abs() / actual)
        })
        .collect();
    if !errors.is_empty() {
        let n = errors.len() as f64;
        r.eta_within = (
            errors.iter().filter(|e| **e <= 0.10).count() as f64 / n,
            errors.iter().filter(|e| **e <= 0.20).count() as f64 / n,
        );
        r.eta_mape = errors.iter().sum::<f64>() / n;
    }
    r
}
