//! Service settings: an optional JSON file (`WR_CONFIG_FILE`), overridden by environment
//! variables. Secrets (keys, admin token) have no defaults.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;
use wr_pass::wire::{self, Wire};
use wr_pass::KeyRing;

use crate::gates::limiter::Limit;
use crate::identity::jwt::{JwksSource, JwtSettings};
use crate::service::env::Env;
use crate::store::RedisTarget;

/// Everything `serve` needs.
#[derive(Debug)]
pub struct Settings {
    /// Listen address (`WR_LISTEN`, default 127.0.0.1:8081).
    pub listen: SocketAddr,
    /// Connections the kernel queues before the service accepts them
    /// (`WR_LISTEN_BACKLOG`, default 4096; the kernel caps it at `net.core.somaxconn`).
    pub listen_backlog: u32,
    /// What origin-queue and the edge must agree on (`WR_PASS_COOKIE`,
    /// `WR_TICKET_COOKIE`, `WR_CLOCK_SKEW_SECONDS`, `WR_MAX_PASS_LIFETIME_SECONDS`).
    pub wire: Wire,
    /// Redis Cluster: seed nodes (`WR_REDIS_NODES`, comma-separated, `rediss://` for
    /// TLS), the CA to trust (`WR_REDIS_CA_FILE`), AUTH (`WR_REDIS_USERNAME`,
    /// `WR_REDIS_PASSWORD`).
    pub redis: RedisTarget,
    /// Bound on every Redis call (`WR_REDIS_TIMEOUT_MS`, default 250).
    pub redis_timeout: Duration,
    /// Bearer token for `/v1/admin` (`WR_ADMIN_TOKEN`); `None` disables the admin API.
    pub admin_token: Option<String>,
    /// Adds `Secure` to cookies (`WR_COOKIE_SECURE=1`); off for plain-HTTP local runs.
    pub cookie_secure: bool,
    /// Queue ticket lifetime (`WR_TICKET_TTL_SECONDS`, default 86400).
    pub ticket_ttl_secs: u64,
    /// Admission step period (`WR_TICK_MS`, default 100).
    pub tick: Duration,
    /// Signing keys (`WR_KEYS` / `WR_KEYS_FILE`).
    pub keys: KeyRing,
    /// Per client address (`WR_CLIENT_RATE_LIMIT`, `RATE[:BURST]`, default 50:100).
    pub client_limit: Limit,
    /// Per visitor (`WR_VISITOR_RATE_LIMIT`, default 50:100).
    pub visitor_limit: Limit,
    /// Peers allowed to say who the client is in `X-Forwarded-For` (`WR_TRUSTED_PROXIES`,
    /// comma-separated IPs; default none).
    pub trusted_proxies: Vec<IpAddr>,
    /// Optional JWT identity (`WR_JWT_*`).
    pub jwt: Option<JwtSettings>,
    /// Replicas that must hold a new place before the join is acknowledged
    /// (`WR_JOIN_REPLICAS`, default 0: acknowledged once the master has it). With 1, a
    /// join is answered only after Redis `WAIT 1` confirms a replica has it, else 503.
    pub join_replicas: u64,
    /// Most joins, and separately most other public calls, in flight at once
    /// (`WR_MAX_IN_FLIGHT`, default 1024); beyond the (adaptive) cap a request gets 503
    /// `QUEUE_BUSY` + `Retry-After: 1` at once.
    pub max_in_flight: usize,
    /// Where the autopilot reads the backend's health (`WR_AUTOPILOT_ENVOY_ADMIN`,
    /// comma-separated Envoy admin addresses, `http://host:port`; default none: every
    /// autopilot falls back to its configured rate and says so).
    pub autopilot_sources: Vec<String>,
    /// The backend's cluster in those Envoys' statistics (`WR_AUTOPILOT_CLUSTER`,
    /// default `backend`).
    pub autopilot_cluster: String,
}

fn jwt_settings(env: &Env) -> Result<Option<JwtSettings>, String> {
    let source = match (env.get("WR_JWT_JWKS_FILE"), env.get("WR_JWT_JWKS_URL")) {
        (Some(_), Some(_)) => {
            return Err("set only one of WR_JWT_JWKS_FILE and WR_JWT_JWKS_URL".into())
        }
        (Some(path), None) => JwksSource::File(path),
        (None, Some(url)) if url.starts_with("https://") || url.starts_with("http://") => {
            JwksSource::Url(url)
        }
        (None, Some(url)) => return Err(format!("WR_JWT_JWKS_URL: {url:?} is not an http(s) URL")),
        (None, None) => {
            if env.get("WR_JWT_REQUIRED").is_some() || env.get("WR_JWT_ISSUER").is_some() {
                return Err("WR_JWT_* set without WR_JWT_JWKS_FILE or WR_JWT_JWKS_URL".into());
            }
            return Ok(None);
        }
    };
    let required = match env.get("WR_JWT_REQUIRED").as_deref() {
        Some("1" | "true") => true,
        None | Some("0" | "false") => false,
        Some(other) => return Err(format!("WR_JWT_REQUIRED: {other:?} is not 0/1")),
    };
    Ok(Some(JwtSettings {
        source,
        issuer: env.get("WR_JWT_ISSUER"),
        audience: env.get("WR_JWT_AUDIENCE"),
        required,
        refresh: Duration::from_secs(number(
            env,
            "WR_JWT_JWKS_REFRESH_SECS",
            None,
            300,
            30..=86_400,
        )?),
    }))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    listen_backlog: Option<u64>,
    pass_cookie: Option<String>,
    ticket_cookie: Option<String>,
    clock_skew_seconds: Option<u64>,
    max_pass_lifetime_seconds: Option<u64>,
    redis_nodes: Option<Vec<String>>,
    redis_ca_file: Option<String>,
    redis_username: Option<String>,
    redis_timeout_ms: Option<u64>,
    cookie_secure: Option<bool>,
    ticket_ttl_seconds: Option<u64>,
    tick_ms: Option<u64>,
    client_rate_limit: Option<String>,
    visitor_rate_limit: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    join_replicas: Option<u64>,
    max_in_flight: Option<u64>,
    autopilot_envoy_admin: Option<Vec<String>>,
    autopilot_cluster: Option<String>,
}

fn number(
    env: &Env,
    name: &str,
    file: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    let value = match env.get(name) {
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("{name}: {text:?} is not a number"))?,
        None => file.unwrap_or(default),
    };
    if !range.contains(&value) {
        return Err(format!(
            "{name}: {value} is outside {}..={}",
            range.start(),
            range.end()
        ));
    }
    Ok(value)
}

fn read_file(env: &Env) -> Result<FileSettings, String> {
    match env.get("WR_CONFIG_FILE") {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("WR_CONFIG_FILE {path:?}: {e}"))?;
            serde_json::from_str(&text).map_err(|e| format!("WR_CONFIG_FILE {path:?}: {e}"))
        }
        None => Ok(FileSettings::default()),
    }
}

/// The wire settings from the environment, else the file, else the defaults.
fn wire_settings(env: &Env, file: &FileSettings) -> Result<Wire, String> {
    let text = |name: &str, file: &Option<String>, default: &str| {
        env.get(name)
            .or_else(|| file.clone())
            .unwrap_or_else(|| default.to_owned())
    };
    let wire = Wire {
        pass_cookie: text("WR_PASS_COOKIE", &file.pass_cookie, wire::PASS_COOKIE),
        ticket_cookie: text("WR_TICKET_COOKIE", &file.ticket_cookie, wire::TICKET_COOKIE),
        clock_skew_seconds: number(
            env,
            "WR_CLOCK_SKEW_SECONDS",
            file.clock_skew_seconds,
            wire::CLOCK_SKEW_SECONDS,
            0..=u64::MAX,
        )?,
        max_pass_lifetime_seconds: number(
            env,
            "WR_MAX_PASS_LIFETIME_SECONDS",
            file.max_pass_lifetime_seconds,
            wire::MAX_PASS_LIFETIME_SECONDS,
            0..=u64::MAX,
        )?,
    };
    match wire.problems().as_slice() {
        [] => Ok(wire),
        problems => Err(format!("wire settings: {}", problems.join("; "))),
    }
}

/// The wire settings alone (for the `pass` commands), from the environment and
/// `WR_CONFIG_FILE` as `serve` reads them.
pub fn load_wire() -> Result<Wire, String> {
    let env = Env::process();
    wire_settings(&env, &read_file(&env)?)
}

impl Settings {
    /// Reads the file (if any) and the environment; every error names its variable.
    pub fn load() -> Result<Settings, String> {
        Settings::from_env(&Env::process())
    }

    /// Reads the file (if `env` names one) and `env`.
    pub fn from_env(env: &Env) -> Result<Settings, String> {
        let file = read_file(env)?;
        let wire = wire_settings(env, &file)?;
        let listen_backlog = number(
            env,
            "WR_LISTEN_BACKLOG",
            file.listen_backlog,
            4096,
            1..=65_535,
        )? as u32;
        let listen_text = env
            .get("WR_LISTEN")
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8081".into());
        let listen = listen_text
            .parse()
            .map_err(|_| format!("WR_LISTEN: {listen_text:?} is not host:port"))?;
        let redis_nodes: Vec<String> = match env.get("WR_REDIS_NODES") {
            Some(text) => text
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            None => file
                .redis_nodes
                .unwrap_or_else(|| (7000..7006).map(|p| format!("127.0.0.1:{p}")).collect()),
        };
        let redis =
            RedisTarget::from_nodes(&redis_nodes).map_err(|e| format!("WR_REDIS_NODES: {e}"))?;
        let redis = match env.get("WR_REDIS_CA_FILE").or(file.redis_ca_file.clone()) {
            Some(path) => {
                let pem = std::fs::read(&path)
                    .map_err(|e| format!("WR_REDIS_CA_FILE: cannot read {path:?}: {e}"))?;
                redis
                    .with_ca_pem(pem)
                    .map_err(|e| format!("WR_REDIS_CA_FILE: {path:?}: {e}"))?
            }
            None => redis,
        };
        let redis = redis
            .with_auth(
                env.get("WR_REDIS_USERNAME").or(file.redis_username.clone()),
                env.get("WR_REDIS_PASSWORD"),
            )
            .map_err(|e| format!("WR_REDIS_USERNAME: {e}"))?;
        let admin_token = env.get("WR_ADMIN_TOKEN");
        if let Some(token) = &admin_token {
            if token.len() < 16 {
                return Err("WR_ADMIN_TOKEN: at least 16 characters".into());
            }
        }
        let cookie_secure = match env.get("WR_COOKIE_SECURE").as_deref() {
            Some("1" | "true") => true,
            Some("0" | "false") => false,
            Some(other) => return Err(format!("WR_COOKIE_SECURE: {other:?} is not 0/1")),
            None => file.cookie_secure.unwrap_or(false),
        };
        let limit = |name: &str, file: Option<String>| -> Result<Limit, String> {
            Limit::parse(&env.get(name).or(file).unwrap_or_else(|| "50:100".into()))
                .map_err(|e| format!("{name}: {e}"))
        };
        let trusted_text: Vec<String> = match env.get("WR_TRUSTED_PROXIES") {
            Some(text) => text
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            None => file.trusted_proxies.clone().unwrap_or_default(),
        };
        let trusted_proxies = trusted_text
            .iter()
            .map(|t| {
                t.parse()
                    .map_err(|_| format!("WR_TRUSTED_PROXIES: {t:?} is not an IP address"))
            })
            .collect::<Result<Vec<IpAddr>, String>>()?;
        let autopilot_sources: Vec<String> = match env.get("WR_AUTOPILOT_ENVOY_ADMIN") {
            Some(text) => text
                .split(',')
                .map(|s| s.trim().trim_end_matches('/').to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            None => file.autopilot_envoy_admin.clone().unwrap_or_default(),
        };
        for source in &autopilot_sources {
            if !(source.starts_with("http://") || source.starts_with("https://")) {
                return Err(format!(
                    "WR_AUTOPILOT_ENVOY_ADMIN: {source:?} is not an http(s):// address"
                ));
            }
        }
        let autopilot_cluster = env
            .get("WR_AUTOPILOT_CLUSTER")
            .or_else(|| file.autopilot_cluster.clone())
            .unwrap_or_else(|| "backend".to_owned());
        if autopilot_cluster.is_empty()
            || !autopilot_cluster
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.|".contains(&b))
        {
            return Err(format!(
                "WR_AUTOPILOT_CLUSTER: {autopilot_cluster:?} is not a cluster name"
            ));
        }
        Ok(Settings {
            autopilot_sources,
            autopilot_cluster,
            listen_backlog,
            wire,
            client_limit: limit("WR_CLIENT_RATE_LIMIT", file.client_rate_limit.clone())?,
            visitor_limit: limit("WR_VISITOR_RATE_LIMIT", file.visitor_rate_limit.clone())?,
            trusted_proxies,
            jwt: jwt_settings(env)?,

            listen,
            redis,
            redis_timeout: Duration::from_millis(number(
                env,
                "WR_REDIS_TIMEOUT_MS",
                file.redis_timeout_ms,
                250,
                10..=5000,
            )?),
            admin_token,
            cookie_secure,
            ticket_ttl_secs: number(
                env,
                "WR_TICKET_TTL_SECONDS",
                file.ticket_ttl_seconds,
                86_400,
                60..=604_800,
            )?,
            tick: Duration::from_millis(number(env, "WR_TICK_MS", file.tick_ms, 100, 10..=5000)?),
            join_replicas: number(env, "WR_JOIN_REPLICAS", file.join_replicas, 0, 0..=5)?,
            max_in_flight: number(
                env,
                "WR_MAX_IN_FLIGHT",
                file.max_in_flight,
                1024,
                1..=1_000_000,
            )? as usize,
            keys: crate::identity::key_ring::load(env)?,
        })
    }
}
