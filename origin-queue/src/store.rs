//! The queue's data in Redis Cluster.
//!
//! All keys of one event share the hash tag `{wr:<event>}`, so every multi-key change is
//! one Lua script in one slot. Scripts are sent by SHA (see `lua_script`). Every call
//! is bounded by the configured timeout; any Redis trouble is [`StoreError::Unavailable`],
//! which the API turns into `503` + `Retry-After`. No KEYS or SCAN anywhere; every key
//! carries an expiry renewed by activity (`KEY_TTL_SECS`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::eta::Observed;
use crate::group_wait::GroupWait;
use crate::lua_script::LuaScript;

/// Event keys live this long after the last write that touched them.
pub const KEY_TTL_SECS: u64 = 7 * 24 * 3600;
/// The set of event ids the admission loop steps through (one small key; ids of
/// events whose keys have expired are removed by the loop). Like every other key it
/// expires: [`KEY_TTL_SECS`] after the last configuration or the last time a running
/// admission loop listed it, so a cluster left without origin-queue empties itself.
const EVENTS_KEY: &str = "wr:events";
/// Most visitors one admission step moves, and most entries one sweep removes.
const MAX_BATCH: u64 = 1_000;
const SWEEP_LIMIT: u64 = 500;

/// The ETA inputs the join and status scripts return.
fn observed(
    last: [u64; 3],
    rate: &str,
    poll_cap_ms: u64,
    started_ms: u64,
    opens_at_ms: u64,
    paused: bool,
    now_ms: u64,
) -> Observed {
    Observed {
        last_1m: last[0],
        last_5m: last[1],
        last_15m: last[2],
        configured_rate: rate.parse().unwrap_or(0.0),
        poll_cap_ms,
        observing_secs: observing_secs(started_ms, now_ms),
        opens_in_secs: opens_at_ms.saturating_sub(now_ms) as f64 / 1000.0,
        paused,
    }
}

/// Seconds since the first admission (0 if none yet).
fn observing_secs(started_ms: u64, now_ms: u64) -> f64 {
    if started_ms == 0 {
        0.0
    } else {
        now_ms.saturating_sub(started_ms) as f64 / 1000.0
    }
}

/// Redis could not answer in time or at all.
#[derive(Debug, Clone)]
pub enum StoreError {
    /// Timeout, connection or cluster error.
    Unavailable(String),
}

/// The Redis Cluster hash slot of `key`: CRC16 (XMODEM) of its hash tag (the text
/// between the first `{` and the next `}`, if not empty) or of the whole key, mod 16384.
fn cluster_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|b| *b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|b| *b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    let crc = tagged.unwrap_or(key).iter().fold(0u16, |crc, byte| {
        (0..8).fold(crc ^ (u16::from(*byte) << 8), |c, _| {
            if c & 0x8000 != 0 {
                (c << 1) ^ 0x1021
            } else {
                c << 1
            }
        })
    });
    crc % 16384
}

/// The names of one event's keys.
struct Keys {
    cfg: String,
    seq: String,
    q: String,
    seenx: String,
    seen: [String; 3],
    granted: String,
    active: String,
    stats: String,
}

impl Keys {
    fn new(event: &str) -> Keys {
        let k = |name: &str| format!("{{wr:{event}}}:{name}");
        Keys {
            cfg: k("cfg"),
            seq: k("seq"),
            q: Keys::line(event),
            seenx: k("seenx"),
            seen: [k("seen0"), k("seen1"), k("seen2")],
            granted: k("granted"),
            active: k("active"),
            stats: k("stats"),
        }
    }

    /// The line alone (the sorted set of waiting visitors), without naming every key.
    fn line(event: &str) -> String {
        format!("{{wr:{event}}}:q")
    }
}

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
}

impl EventConfig {
    /// Every problem with the values, one line each.
    pub fn problems(&self) -> Vec<String> {
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
        if self.closes_at <= self.opens_at {
            p.push("closes_at: must be after opens_at".to_owned());
        }
        p
    }
}

/// Result of a join.
#[derive(Debug, PartialEq)]
pub enum Joined {
    /// In line at 0-based `rank`; `new` if this call created the place.
    Waiting { rank: u64, new_seq: Option<u64> },
    /// Already admitted: poll status to pick up the pass.
    Admitted,
    /// The event no longer takes visitors.
    Closed,
    /// No such event.
    NoEvent,
}

/// Result of a status call.
#[derive(Debug, PartialEq)]
pub enum Standing {
    /// In line at 0-based `rank`.
    Waiting { rank: u64 },
    /// Admitted; the session ends at `session_end_ms`. `claimed_now` is set when this
    /// call claimed the grant.
    Admitted {
        /// When the session (and the pass) ends.
        session_end_ms: u64,
        /// What the server knew at the claim.
        claimed_now: Option<Claimed>,
    },
    /// Not in line any more (abandoned, grant lapsed, session over, or left).
    Expired,
}

/// What the server knew about a visitor when it claimed the grant. (When the
/// visitor joined and the ETA it was shown travel in its signed ticket, not in Redis.)
#[derive(Debug, PartialEq, Clone, Copy)]
pub struct Claimed {
    /// When the admission step granted admission (ms).
    pub granted_ms: u64,
}

/// What one status script call found for a batch of visitors of one event.
#[derive(Debug, PartialEq)]
pub struct Statuses {
    /// One per visitor, in the order asked.
    pub standings: Vec<Standing>,
    /// In line, for the whole event.
    pub waiting: u64,
    /// The ETA inputs.
    pub observed: Observed,
}

/// What one join script call found for a batch of visitors of one event.
#[derive(Debug, PartialEq)]
pub struct Joins {
    /// One per visitor, in the order asked.
    pub joined: Vec<Joined>,
    /// In line after the batch, for the whole event.
    pub waiting: u64,
    /// The ETA inputs.
    pub observed: Observed,
}

fn int(v: &redis::Value) -> Result<i64, String> {
    redis::from_redis_value(v).map_err(|e| e.to_string())
}

fn text(v: &redis::Value) -> Result<String, String> {
    redis::from_redis_value(v).map_err(|e| e.to_string())
}

/// The part of a batch reply that is shared by the batch: `{found, waiting, n1, n5, n15,
/// rate, poll cap ms, first admission ms, opening ms, paused (1/0)}`, then 3 items for
/// each of `asked` visitors (see `lua/status.lua` and `lua/join.lua`). `None`: no such
/// event. Returns the line length, the ETA inputs and each visitor's 3 items.
fn parse_batch(
    reply: &[redis::Value],
    asked: usize,
    now_ms: u64,
) -> Result<Option<(u64, Observed, std::slice::ChunksExact<'_, redis::Value>)>, String> {
    const HEAD: usize = 10;
    match reply.first().map(int).transpose()? {
        Some(0) => return Ok(None),
        Some(1) if reply.len() == HEAD + 3 * asked => {}
        _ => return Err(format!("unexpected batch reply of {} items", reply.len())),
    }
    let n = |i: usize| int(&reply[i]).map(|v| v.max(0) as u64);
    let observed = observed(
        [n(2)?, n(3)?, n(4)?],
        &text(&reply[5])?,
        n(6)?,
        n(7)?,
        n(8)?,
        n(9)? == 1,
        now_ms,
    );
    Ok(Some((n(1)?, observed, reply[HEAD..].chunks_exact(3))))
}

/// Reads the join script's reply (see `lua/join.lua`) for `asked` visitors.
fn parse_joins(reply: &[redis::Value], asked: usize, now_ms: u64) -> Result<Option<Joins>, String> {
    let Some((waiting, observed, each)) = parse_batch(reply, asked, now_ms)? else {
        return Ok(None);
    };
    let joined = each
        .map(|one| {
            let seq = int(&one[2])?.max(0) as u64;
            Ok(match text(&one[0])?.as_str() {
                "waiting" => Joined::Waiting {
                    rank: int(&one[1])?.max(0) as u64,
                    new_seq: (seq > 0).then_some(seq),
                },
                "admitted" => Joined::Admitted,
                "closed" => Joined::Closed,
                other => return Err(format!("unexpected join state {other:?}")),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Some(Joins {
        joined,
        waiting,
        observed,
    }))
}

/// Reads the status script's reply (see `lua/status.lua`) for `asked` visitors.
fn parse_statuses(
    reply: &[redis::Value],
    asked: usize,
    now_ms: u64,
) -> Result<Option<Statuses>, String> {
    let Some((waiting, observed, each)) = parse_batch(reply, asked, now_ms)? else {
        return Ok(None);
    };
    let standings = each
        .map(|one| {
            let x = int(&one[1])?.max(0) as u64;
            let granted = int(&one[2])?.max(0) as u64;
            Ok(match text(&one[0])?.as_str() {
                "waiting" => Standing::Waiting { rank: x },
                "admitted" => Standing::Admitted {
                    session_end_ms: x,
                    claimed_now: (granted > 0).then_some(Claimed {
                        granted_ms: granted,
                    }),
                },
                "expired" => Standing::Expired,
                other => return Err(format!("unexpected status state {other:?}")),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Some(Statuses {
        standings,
        waiting,
        observed,
    }))
}

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

/// Outcome of claiming an `Idempotency-Key`.
#[derive(Debug, PartialEq)]
pub enum IdemBegin {
    /// First use: run the request, then record its answer.
    New,
    /// Seen with the same request: the recorded answer (JSON).
    Replay(String),
    /// The first request with this key is still running.
    InProgress,
    /// Seen with a different request.
    Conflict,
}

/// Live figures for an event.
#[derive(Debug, Serialize)]
pub struct Stats {
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
    /// Weighted observed admission rate per second.
    pub admission_rate: f64,
    /// Admissions in the last 1, 5, 15 minutes.
    pub admitted_last: [u64; 3],
    /// Paused by an operator.
    pub paused: bool,
    /// The configuration.
    pub config: Option<EventConfig>,
}

/// The Redis Cluster connection and the scripts.
#[derive(Clone)]
pub struct Store {
    link: Arc<Link>,
    /// Replicas that must confirm a new place before `join` returns (0: none).
    join_replicas: u64,
    /// Per slot: the group commit that shares one `WAIT` among joins.
    group_waits: Arc<std::sync::Mutex<HashMap<u16, Arc<GroupWait>>>>,
    join: LuaScript,
    status: LuaScript,
    leave: LuaScript,
    admit: LuaScript,
}

/// After Redis has failed every call for this long, the cluster connection is rebuilt
/// from the configured nodes (and not more often than this).
const REBUILD_AFTER_MS: u64 = 2_000;

/// The cluster connection, and when to replace it.
///
/// The client refreshes its slot map on MOVED replies and on some connection errors,
/// but a master killed under load left it sending to the dead node for good (seen in
/// `make chaos`, scenario failover). So a connection that has failed every call for
/// [`REBUILD_AFTER_MS`] is replaced by a new one, which reads the slot map afresh from
/// the configured nodes; one rebuild at a time, in the background.
struct Link {
    nodes: Vec<String>,
    timeout: Duration,
    /// The runtime the connection's tasks run on (see [`Store::connect`]).
    runtime: tokio::runtime::Handle,
    conn: RwLock<ClusterConnection>,
    last_ok_ms: AtomicU64,
    last_rebuild_ms: AtomicU64,
    rebuilding: AtomicBool,
}

impl Link {
    fn get(&self) -> ClusterConnection {
        self.conn.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn succeeded(&self) {
        self.last_ok_ms.store(now_ms(), Ordering::Relaxed);
    }

    fn failed(self: &Arc<Self>) {
        let now = now_ms();
        let failing_for = now.saturating_sub(self.last_ok_ms.load(Ordering::Relaxed));
        let since_rebuild = now.saturating_sub(self.last_rebuild_ms.load(Ordering::Relaxed));
        if failing_for < REBUILD_AFTER_MS
            || since_rebuild < REBUILD_AFTER_MS
            || self.rebuilding.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.last_rebuild_ms.store(now, Ordering::Relaxed);
        let link = self.clone();
        self.runtime.spawn(async move {
            match open(&link.nodes, link.timeout).await {
                Ok(conn) => {
                    *link.conn.write().unwrap_or_else(|p| p.into_inner()) = conn;
                    tracing::warn!(
                        failing_ms = failing_for,
                        "Redis failed every call; rebuilt the cluster connection"
                    );
                }
                Err(e) => tracing::warn!(error = ?e, "rebuilding the Redis connection failed"),
            }
            link.rebuilding.store(false, Ordering::Release);
        });
    }
}

/// A new cluster connection (slot map read from `nodes`), bounded by `timeout` per
/// attempt.
async fn open(nodes: &[String], timeout: Duration) -> Result<ClusterConnection, StoreError> {
    let client = ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .retries(1)
        .build()
        .map_err(unavailable)?;
    tokio::time::timeout(timeout * 4, client.get_async_connection())
        .await
        .map_err(|_| unavailable("timed out connecting to Redis Cluster"))?
        .map_err(unavailable)
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl Store {
    /// Connects to the cluster (bounded by `timeout` per attempt). The connection's
    /// tasks, and whatever [`Store::spawn`] starts, run on the runtime this is called
    /// on: `serve` calls it on a runtime of its own, so that Redis replies are read
    /// even while a flood of HTTP connections keeps the main runtime's queue long.
    pub async fn connect(nodes: &[String], timeout: Duration) -> Result<Store, StoreError> {
        let conn = open(nodes, timeout).await?;
        Ok(Store {
            link: Arc::new(Link {
                nodes: nodes.to_vec(),
                timeout,
                runtime: tokio::runtime::Handle::current(),
                conn: RwLock::new(conn),
                last_ok_ms: AtomicU64::new(now_ms()),
                last_rebuild_ms: AtomicU64::new(0),
                rebuilding: AtomicBool::new(false),
            }),
            join_replicas: 0,
            group_waits: Arc::default(),
            join: LuaScript::new(concat!(
                include_str!("lua/seen.lua"),
                include_str!("lua/join.lua")
            )),
            status: LuaScript::new(concat!(
                include_str!("lua/seen.lua"),
                include_str!("lua/status.lua")
            )),
            leave: LuaScript::new(include_str!("lua/leave.lua")),
            admit: LuaScript::new(concat!(
                include_str!("lua/seen.lua"),
                include_str!("lua/admit.lua")
            )),
        })
    }

    /// The bound on every Redis call.
    pub fn timeout(&self) -> Duration {
        self.link.timeout
    }

    /// Runs `task` on the runtime the connection lives on (the one [`Store::connect`]
    /// was called on).
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.link.runtime.spawn(task)
    }

    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let result = match tokio::time::timeout(self.timeout(), f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("Redis call timed out")),
        };
        match &result {
            Ok(_) => self.link.succeeded(),
            Err(_) => self.link.failed(),
        }
        result
    }

    /// Requires `replicas` replicas to confirm each new place before a join returns
    /// (Redis `WAIT`, bounded by half the Redis timeout); 0 turns that off.
    pub fn with_join_replicas(mut self, replicas: u64) -> Store {
        self.join_replicas = replicas;
        self
    }

    /// The group commit of `slot`'s master.
    fn group_wait(&self, slot: u16) -> Arc<GroupWait> {
        let mut groups = self.group_waits.lock().unwrap_or_else(|p| p.into_inner());
        groups.entry(slot).or_default().clone()
    }

    /// Waits until `self.join_replicas` replicas of the master serving `key` hold every
    /// write this connection sent it; unavailable if they do not confirm in time.
    async fn replicated(&self, key: &str) -> Result<(), StoreError> {
        use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
        // WAIT names no key: send it to the master of `key`'s slot, on the connection
        // that carried the join.
        let route = Route::new(cluster_slot(key.as_bytes()), SlotAddr::Master);
        let wait_ms = (self.timeout().as_millis() / 2).max(1) as u64;
        let mut wait = redis::cmd("WAIT");
        wait.arg(self.join_replicas).arg(wait_ms);
        let mut c = self.link.get();
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
        let confirmed = self
            .bounded(async move { c.route_command(&wait, routing).await })
            .await?;
        match redis::from_redis_value::<u64>(&confirmed) {
            Ok(n) if n >= self.join_replicas => Ok(()),
            Ok(n) => Err(unavailable(format!(
                "only {n} of {} replicas confirmed the join",
                self.join_replicas
            ))),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Redis answers a PING.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.link.get();
        self.bounded(async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }

    /// Creates or replaces an event's configuration (one HSET) and registers it.
    pub async fn configure(&self, event: &str, cfg: &EventConfig) -> Result<(), StoreError> {
        let k = Keys::new(event);
        let mut c = self.link.get();
        let fields: Vec<(&str, String)> = vec![
            ("rate", cfg.rate_per_second.to_string()),
            ("burst", cfg.burst.to_string()),
            ("max_active", cfg.max_active.to_string()),
            ("session_ms", (cfg.session_seconds * 1000).to_string()),
            ("claim_ms", (cfg.claim_seconds * 1000).to_string()),
            ("abandon_ms", (cfg.abandon_seconds * 1000).to_string()),
            ("opens_at_ms", (cfg.opens_at * 1000).to_string()),
            ("closes_at_ms", (cfg.closes_at * 1000).to_string()),
            ("json", serde_json::to_string(cfg).unwrap_or_default()),
        ];
        let event = event.to_owned();
        self.bounded(async move {
            let () = redis::pipe()
                .hset_multiple(&k.cfg, &fields)
                .expire(&k.cfg, KEY_TTL_SECS as i64)
                .query_async(&mut c)
                .await?;
            redis::pipe()
                .sadd(EVENTS_KEY, &event)
                .expire(EVENTS_KEY, KEY_TTL_SECS as i64)
                .query_async(&mut c)
                .await
        })
        .await
    }

    /// Pauses or resumes admission.
    pub async fn set_paused(&self, event: &str, paused: bool) -> Result<bool, StoreError> {
        let k = Keys::new(event);
        let mut c = self.link.get();
        self.bounded(async move {
            if !c.exists::<_, bool>(&k.cfg).await? {
                return Ok(false);
            }
            c.hset::<_, _, _, ()>(&k.cfg, "paused", if paused { "1" } else { "0" })
                .await?;
            Ok(true)
        })
        .await
    }

    /// Event ids known to the admission loop; renews the list's lifetime.
    pub async fn events(&self) -> Result<Vec<String>, StoreError> {
        let mut c = self.link.get();
        self.bounded(async move {
            let (events, _renewed): (Vec<String>, bool) = redis::pipe()
                .smembers(EVENTS_KEY)
                .expire(EVENTS_KEY, KEY_TTL_SECS as i64)
                .query_async(&mut c)
                .await?;
            Ok(events)
        })
        .await
    }

    /// Joins each of `visitors` (of one event, in arrival order) to the line, or finds
    /// the place it holds, in one script call. `None`: no such event. The line length
    /// (after the whole batch) and the ETA inputs are shared by the batch. With
    /// [`Store::with_join_replicas`], a new place is durable only after
    /// [`Store::confirm_placed`].
    pub async fn joins(
        &self,
        event: &str,
        visitors: &[&str],
        now_ms: u64,
    ) -> Result<Option<Joins>, StoreError> {
        let k = Keys::new(event);
        let mut inv = self.join.prepare_invoke();
        inv.key(&k.cfg)
            .key(&k.seq)
            .key(&k.q)
            .key(&k.seenx)
            .key(&k.seen[0])
            .key(&k.seen[1])
            .key(&k.seen[2])
            .key(&k.granted)
            .key(&k.active)
            .key(&k.stats);
        inv.arg(now_ms).arg(KEY_TTL_SECS);
        for visitor in visitors {
            inv.arg(*visitor);
        }
        let mut c = self.link.get();
        let reply: Vec<redis::Value> = self
            .bounded(async move { inv.invoke_async(&mut c).await })
            .await?;
        parse_joins(&reply, visitors.len(), now_ms).map_err(unavailable)
    }

    /// Waits until the configured number of replicas hold every place this instance
    /// has written to `event`'s line (one `WAIT` shared by all joins waiting at once);
    /// unavailable if they do not confirm in time. Nothing to wait for without
    /// [`Store::with_join_replicas`].
    pub async fn confirm_placed(&self, event: &str) -> Result<(), StoreError> {
        if self.join_replicas == 0 {
            return Ok(());
        }
        let q = Keys::line(event);
        // Bounded as a whole: waiting for the WAIT in flight counts too.
        let group = self.group_wait(cluster_slot(q.as_bytes()));
        tokio::time::timeout(self.timeout(), group.confirm(|| self.replicated(&q)))
            .await
            .map_err(|_| unavailable("replicas did not confirm the join in time"))?
    }

    /// Where each of `visitors` (of one event) stands, in one script call; claims the
    /// grant of each who has one. `None`: no such event. The line length and the ETA
    /// inputs are shared by the whole batch.
    pub async fn statuses(
        &self,
        event: &str,
        visitors: &[&str],
        now_ms: u64,
    ) -> Result<Option<Statuses>, StoreError> {
        let k = Keys::new(event);
        let mut inv = self.status.prepare_invoke();
        inv.key(&k.cfg)
            .key(&k.q)
            .key(&k.seenx)
            .key(&k.seen[0])
            .key(&k.seen[1])
            .key(&k.seen[2])
            .key(&k.granted)
            .key(&k.active)
            .key(&k.stats);
        inv.arg(now_ms);
        for visitor in visitors {
            inv.arg(*visitor);
        }
        let mut c = self.link.get();
        let reply: Vec<redis::Value> = self
            .bounded(async move { inv.invoke_async(&mut c).await })
            .await?;
        parse_statuses(&reply, visitors.len(), now_ms).map_err(unavailable)
    }

    /// Removes `visitor` from the line and from admission; true if it held anything.
    pub async fn leave(&self, event: &str, visitor: &str) -> Result<bool, StoreError> {
        let k = Keys::new(event);
        let mut inv = self.leave.prepare_invoke();
        inv.key(&k.q).key(&k.granted).key(&k.active).arg(visitor);
        let mut c = self.link.get();
        let removed: u64 = self
            .bounded(async move { inv.invoke_async(&mut c).await })
            .await?;
        Ok(removed > 0)
    }

    fn idem_key(event: &str, key: &str) -> String {
        format!("{{wr:{event}}}:idem:{key}")
    }

    /// Claims `key` for the request fingerprinted `fp` (SET NX, so exactly one wins).
    pub async fn idem_begin(
        &self,
        event: &str,
        key: &str,
        fp: &str,
    ) -> Result<IdemBegin, StoreError> {
        let k = Self::idem_key(event, key);
        let mut c = self.link.get();
        let fp = fp.to_owned();
        let ttl = crate::idempotency::TTL_SECS;
        self.bounded(async move {
            let won: Option<String> = redis::cmd("SET")
                .arg(&k)
                .arg(format!("p:{fp}"))
                .arg("NX")
                .arg("EX")
                .arg(ttl)
                .query_async(&mut c)
                .await?;
            if won.is_some() {
                return Ok(IdemBegin::New);
            }
            let current: Option<String> = c.get(&k).await?;
            let Some(current) = current else {
                return Ok(IdemBegin::InProgress);
            };
            let (state, rest) = current.split_at(current.len().min(2));
            let (stored_fp, answer) = rest.split_once(':').unwrap_or((rest, ""));
            Ok(match (state, stored_fp == fp) {
                (_, false) => IdemBegin::Conflict,
                ("d:", true) => IdemBegin::Replay(answer.to_owned()),
                _ => IdemBegin::InProgress,
            })
        })
        .await
    }

    /// Records the answer for a claimed key.
    pub async fn idem_finish(
        &self,
        event: &str,
        key: &str,
        fp: &str,
        answer: &str,
    ) -> Result<(), StoreError> {
        let k = Self::idem_key(event, key);
        let mut c = self.link.get();
        let value = format!("d:{fp}:{answer}");
        self.bounded(async move {
            c.set_ex::<_, _, ()>(&k, value, crate::idempotency::TTL_SECS)
                .await
        })
        .await
    }

    /// Releases a claimed key after a failed request, so that a retry runs again.
    pub async fn idem_release(&self, event: &str, key: &str) -> Result<(), StoreError> {
        let k = Self::idem_key(event, key);
        let mut c = self.link.get();
        self.bounded(async move { c.del::<_, ()>(&k).await }).await
    }

    /// Forgets an event whose keys have expired.
    pub async fn unregister(&self, event: &str) -> Result<(), StoreError> {
        let mut c = self.link.get();
        let event = event.to_owned();
        self.bounded(async move { c.srem::<_, _, ()>(EVENTS_KEY, event).await })
            .await
    }

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
        let k = Keys::new(event);
        let mut inv = self.admit.prepare_invoke();
        inv.key(&k.cfg)
            .key(&k.q)
            .key(&k.seenx)
            .key(&k.seen[0])
            .key(&k.seen[1])
            .key(&k.seen[2])
            .key(&k.granted)
            .key(&k.active)
            .key(&k.stats);
        inv.arg(now_ms)
            .arg(MAX_BATCH)
            .arg(SWEEP_LIMIT)
            .arg(KEY_TTL_SECS)
            .arg(missed_poll_ms);
        let mut c = self.link.get();
        let (admitted, lapsed, abandoned, _ended, waiting, granted, active): (
            i64,
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
        ) = self
            .bounded(async move { inv.invoke_async(&mut c).await })
            .await?;
        Ok((admitted >= 0).then_some(Step {
            admitted: admitted as u64,
            lapsed,
            abandoned,
            waiting,
            granted,
            active,
        }))
    }

    /// Live figures; `None` if the event does not exist.
    pub async fn stats(&self, event: &str) -> Result<Option<Stats>, StoreError> {
        let k = Keys::new(event);
        let mut c = self.link.get();
        #[allow(clippy::type_complexity)]
        let (cfg, stats, waiting, granted, active): (
            (Option<String>, Option<String>),
            Vec<Option<u64>>,
            u64,
            u64,
            u64,
        ) = self
            .bounded(async move {
                redis::pipe()
                    .hget(&k.cfg, &["json", "paused"])
                    .hget(
                        &k.stats,
                        &[
                            "admitted_total",
                            "abandoned_total",
                            "lapsed_total",
                            "n1",
                            "n5",
                            "n15",
                            "started_ms",
                        ],
                    )
                    .zcard(&k.q)
                    .zcard(&k.granted)
                    .zcard(&k.active)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let Some(json) = cfg.0 else { return Ok(None) };
        let s = |i: usize| stats.get(i).copied().flatten().unwrap_or(0);
        let observed = Observed {
            last_1m: s(3),
            last_5m: s(4),
            last_15m: s(5),
            observing_secs: observing_secs(s(6), crate::clock::now_ms()),
            ..Observed::default()
        };
        Ok(Some(Stats {
            waiting,
            granted,
            active,
            admitted_total: s(0),
            abandoned_total: s(1),
            lapsed_total: s(2),
            admission_rate: observed.weighted_rate(),
            admitted_last: [s(3), s(4), s(5)],
            paused: cfg.1.as_deref() == Some("1"),
            config: serde_json::from_str(&json).ok(),
        }))
    }
}

#[cfg(test)]
mod slot_tests {
    use super::cluster_slot;

    #[test]
    fn slots_match_redis_cluster_keyslot() {
        // Values from `redis-cli CLUSTER KEYSLOT` (Redis 7.0).
        assert_eq!(cluster_slot(b"somekey"), 11058);
        assert_eq!(cluster_slot(b"foo"), 12182);
        assert_eq!(cluster_slot(b"{foo}bar"), 12182);
        assert_eq!(
            cluster_slot(b"{}foo"),
            9500,
            "an empty tag hashes the whole key"
        );
    }
}

#[cfg(test)]
mod batch_reply_tests {
    use super::*;
    use redis::Value;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn reads_each_visitor_of_a_batch_in_order() {
        let head = [1, 42, 60, 300, 900].map(Value::Int);
        let mut reply: Vec<Value> = head.to_vec();
        reply.extend([bulk("50"), Value::Int(1000), Value::Int(5_000)]);
        // Opened before `now`: nothing to add to the wait; paused.
        reply.extend([Value::Int(4_000), Value::Int(1)]);
        reply.extend([bulk("waiting"), Value::Int(7), Value::Int(0)]);
        reply.extend([bulk("admitted"), Value::Int(90_000), Value::Int(80_000)]);
        reply.extend([bulk("admitted"), Value::Int(95_000), Value::Int(0)]);
        reply.extend([bulk("expired"), Value::Int(-1), Value::Int(0)]);
        let found = parse_statuses(&reply, 4, 65_000).unwrap().unwrap();
        assert_eq!(found.waiting, 42);
        assert_eq!(found.observed.last_1m, 60);
        assert_eq!(found.observed.configured_rate, 50.0);
        assert_eq!(found.observed.poll_cap_ms, 1000);
        assert_eq!(found.observed.observing_secs, 60.0);
        assert_eq!(found.observed.opens_in_secs, 0.0);
        assert!(found.observed.paused);
        assert_eq!(
            found.standings,
            vec![
                Standing::Waiting { rank: 7 },
                Standing::Admitted {
                    session_end_ms: 90_000,
                    claimed_now: Some(Claimed { granted_ms: 80_000 })
                },
                Standing::Admitted {
                    session_end_ms: 95_000,
                    claimed_now: None
                },
                Standing::Expired,
            ]
        );
    }

    #[test]
    fn no_event_and_malformed_replies() {
        assert_eq!(parse_statuses(&[Value::Int(0)], 3, 0), Ok(None));
        // One visitor asked, none answered: an error, never a guess.
        let short = [1, 0, 0, 0, 0].map(Value::Int).to_vec();
        assert!(parse_statuses(&short, 1, 0).is_err());
        assert!(parse_statuses(&[], 1, 0).is_err());
        let mut unknown = [1, 0, 0, 0, 0].map(Value::Int).to_vec();
        unknown.extend([bulk("50"), Value::Int(1000)]);
        unknown.extend([0, 0, 0].map(Value::Int));
        unknown.extend([bulk("gone"), Value::Int(-1), Value::Int(0)]);
        assert!(parse_statuses(&unknown, 1, 0).is_err());
        assert!(parse_joins(&unknown, 1, 0).is_err());
    }

    #[test]
    fn reads_each_join_of_a_batch_in_order() {
        let mut reply = [1, 3, 0, 0, 0].map(Value::Int).to_vec();
        // Opens 90 s after `now`.
        reply.extend([
            bulk("50"),
            Value::Int(1000),
            Value::Int(0),
            Value::Int(100_000),
            Value::Int(0),
        ]);
        reply.extend([bulk("waiting"), Value::Int(1), Value::Int(12)]);
        reply.extend([bulk("waiting"), Value::Int(1), Value::Int(0)]);
        reply.extend([bulk("admitted"), Value::Int(-1), Value::Int(0)]);
        reply.extend([bulk("closed"), Value::Int(-1), Value::Int(0)]);
        let found = parse_joins(&reply, 4, 10_000).unwrap().unwrap();
        assert_eq!(found.waiting, 3);
        assert_eq!(found.observed.configured_rate, 50.0);
        assert_eq!(found.observed.opens_in_secs, 90.0);
        assert!(!found.observed.paused);
        assert_eq!(
            found.joined,
            vec![
                Joined::Waiting {
                    rank: 1,
                    new_seq: Some(12)
                },
                Joined::Waiting {
                    rank: 1,
                    new_seq: None
                },
                Joined::Admitted,
                Joined::Closed,
            ]
        );
        assert_eq!(parse_joins(&[Value::Int(0)], 2, 0), Ok(None));
        assert!(
            parse_joins(&reply, 5, 0).is_err(),
            "a visitor without an answer"
        );
    }
}
