//! Background processes for tests: a shared Redis Cluster and origin-queue instances.
//!
//! The cluster is started once per test binary, on free ports, in a scratch directory;
//! a watchdog shell stops it when the test process exits, however it exits.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::fixtures::workspace_root;
use crate::http;

/// Runs `cleanup` (a shell command) once this process has exited.
fn on_exit(cleanup: &str) {
    let me = std::process::id();
    let script = format!("while kill -0 {me} 2>/dev/null; do sleep 0.3; done; {cleanup}");
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// First ports of the test clusters (`RedisCluster`), and of the stacks' clusters. Each
/// node also listens on its port + 10000 (the cluster bus), and every one of those must
/// stay below the kernel's ephemeral range (32768 and up): an outgoing connection may
/// take any ephemeral port as its own at any moment, and a node whose bus port is taken
/// fails to start. The two ranges, their bus ports and `make up`'s 7000-7005 (bus
/// 17000-17005) do not overlap.
const CLUSTER_PORTS: std::ops::Range<u16> = 14_000..16_990;
const STACK_REDIS_PORTS: std::ops::Range<u16> = 11_000..13_990;

/// A six-node Redis Cluster in a scratch directory; stopped when the test process exits.
pub struct RedisCluster {
    dir: PathBuf,
    base: u16,
    /// Seed nodes as `host:port`.
    pub nodes: Vec<String>,
}

impl RedisCluster {
    /// Starts a new cluster on free ports.
    pub fn start() -> RedisCluster {
        let script = workspace_root().join("scripts/redis-cluster");
        for attempt in 0..8u16 {
            let base = CLUSTER_PORTS.start
                + ((std::process::id() as u16 % 300) * 6 + attempt * 1100 + (seq() * 37) % 1000)
                    % (CLUSTER_PORTS.end - CLUSTER_PORTS.start);
            if !claim_redis_ports(base) {
                continue;
            }
            let ports: Vec<u16> = (base..base + 6).collect();
            let dir = std::env::temp_dir().join(format!("wr-redis-{}-{base}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let out = Command::new(&script)
                .arg("start")
                .arg(&dir)
                .arg(base.to_string())
                .output()
                .expect("run scripts/redis-cluster");
            on_exit(&format!(
                "{} stop {} {base}; rm -rf {}",
                script.display(),
                dir.display(),
                dir.display()
            ));
            if out.status.success() {
                let nodes = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
                return RedisCluster { dir, base, nodes };
            }
            eprintln!(
                "redis cluster on {base} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        panic!(
            "could not start a Redis Cluster (is redis-server installed? run scripts/install-deps)"
        );
    }

    fn script(&self, verb: &str) -> std::process::Output {
        Command::new(workspace_root().join("scripts/redis-cluster"))
            .arg(verb)
            .arg(&self.dir)
            .arg(self.base.to_string())
            .output()
            .expect("run scripts/redis-cluster")
    }

    /// Stops every node (data stays on disk).
    pub fn stop(&self) {
        self.script("stop");
    }

    /// Starts the stopped (or dead) nodes again; they rejoin the same cluster.
    pub fn restart(&self) {
        let out = self.script("start");
        assert!(
            out.status.success(),
            "restart failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn seq() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static N: AtomicU16 = AtomicU16::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// The cluster shared by the tests of this binary: its seed nodes.
pub fn redis_cluster() -> &'static Vec<String> {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    &CLUSTER.get_or_init(RedisCluster::start).nodes
}

fn free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Every port this test process has handed out. A port is handed out before the
/// program that will listen on it starts, so the kernel could offer it again to a
/// test running in parallel: the book makes sure it never is.
fn handed_out() -> std::sync::MutexGuard<'static, std::collections::HashSet<u16>> {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static BOOK: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    BOOK.get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Claims the six ports of a Redis Cluster from `base` and their bus ports (+10000) if
/// all twelve are free now and none was handed out before; false otherwise.
fn claim_redis_ports(base: u16) -> bool {
    let ports: Vec<u16> = (base..base + 6).flat_map(|p| [p, p + 10000]).collect();
    let mut book = handed_out();
    if ports.iter().any(|p| book.contains(p) || !free(*p)) {
        return false;
    }
    book.extend(ports);
    true
}

/// A free loopback port, never the same twice in one test process and never one of a
/// claimed Redis Cluster's. Still racy by nature: another program may take it before
/// ours binds.
pub fn free_port() -> u16 {
    let mut book = handed_out();
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if book.insert(port) {
            return port;
        }
    }
}

/// The origin-queue binary (debug build), built once per test process.
pub fn origin_queue_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_origin_queue(false)).clone()
}

/// A command for `program`, pinned to `cpu` with `taskset` if one is given.
pub fn command_on_cpu(program: &str, cpu: Option<u32>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.args(["-c", &cpu.to_string(), program]);
            command
        }
        None => Command::new(program),
    }
}

/// Like [`command_on_cpu`], at the idle scheduling priority (`chrt --idle 0`): the
/// program gets only the CPU time that no other process wants. A load tool run so
/// beside the product stands in for a machine of its own.
pub fn command_idle_on_cpu(program: &str, cpu: Option<u32>) -> Command {
    let mut command = Command::new("chrt");
    command.args(["--idle", "0"]);
    if let Some(cpu) = cpu {
        command.args(["taskset", "-c", &cpu.to_string()]);
    }
    command.arg(program);
    command
}

/// The origin-queue binary (release build), for benchmarks and load scenarios.
/// `WR_ORIGIN_QUEUE_BIN` names another binary instead (an A/B of two builds); it must
/// exist, or the run stops.
pub fn origin_queue_release_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| match std::env::var_os("WR_ORIGIN_QUEUE_BIN") {
            Some(path) => {
                let path = PathBuf::from(path);
                assert!(path.is_file(), "WR_ORIGIN_QUEUE_BIN={path:?} is not a file");
                path
            }
            None => build_origin_queue(true),
        })
        .clone()
}

fn build_origin_queue(release: bool) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "-p", "origin-queue"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .current_dir(workspace_root())
        .status()
        .expect("run cargo");
    assert!(status.success(), "building origin-queue failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target
        .join(if release { "release" } else { "debug" })
        .join("origin-queue")
}

/// The admin token tests use.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// The settings every test's origin-queue starts with (extra settings follow them).
pub fn origin_queue_env(nodes: &[String], addr: SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("WR_KEYS", crate::fixtures::KEYS_JSON.to_owned()),
        ("WR_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ("WR_REDIS_NODES", nodes.join(",")),
        ("WR_LISTEN", addr.to_string()),
        ("WR_TICK_MS", "50".to_owned()),
        ("WR_LOG", "warn".to_owned()),
        // Every simulated visitor comes from 127.0.0.1: limits off unless a test sets them.
        ("WR_CLIENT_RATE_LIMIT", "100000:100000".to_owned()),
        ("WR_VISITOR_RATE_LIMIT", "100000:100000".to_owned()),
    ]
}

/// A running origin-queue; killed on drop.
pub struct OriginQueue {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl OriginQueue {
    /// Starts origin-queue against `nodes` with extra environment; waits for `/readyz`.
    pub fn start(nodes: &[String], extra_env: &[(&str, &str)]) -> OriginQueue {
        Self::start_binary(&origin_queue_bin(), nodes, extra_env)
    }

    /// Same, with a given build of the binary (the benchmarks use the release build).
    pub fn start_binary(
        binary: &std::path::Path,
        nodes: &[String],
        extra_env: &[(&str, &str)],
    ) -> OriginQueue {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut cmd = Command::new(binary);
        cmd.arg("serve")
            .env_remove("WR_KEYS_FILE")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in origin_queue_env(nodes, addr) {
            cmd.env(k, v);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn origin-queue");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("origin-queue exited early: {status}");
            }
            if http::get(addr, "/readyz", &[])
                .map(|r| r.status == 200)
                .unwrap_or(false)
            {
                return OriginQueue { child, addr };
            }
            assert!(
                Instant::now() < deadline,
                "origin-queue not ready after 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl OriginQueue {
    /// Creates `event` opening in an hour: nobody is admitted and nobody abandons for
    /// the length of a test, so the line only grows and every acknowledged join must
    /// still be in it.
    pub fn put_scheduled_event(&self, event: &str) {
        let t = crate::fixtures::now();
        self.put_event(
            event,
            &serde_json::json!({"rate_per_second": 10, "burst": 10, "max_active": 100,
                "session_seconds": 60, "claim_seconds": 30, "abandon_seconds": 3600,
                "opens_at": t + 3600, "closes_at": t + 7200}),
        );
    }

    /// `POST /v1/events/{event}/join` as a new visitor (no ticket); panics if unanswered.
    pub fn join(&self, event: &str) -> crate::http::Response {
        crate::http::request(
            self.addr,
            "POST",
            &format!("/v1/events/{event}/join"),
            &[],
            b"",
        )
        .unwrap()
    }

    /// Creates or replaces `event` with `config` through the admin API; panics unless 200.
    pub fn put_event(&self, event: &str, config: &serde_json::Value) {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let r = crate::http::request(
            self.addr,
            "PUT",
            &format!("/v1/admin/events/{event}"),
            &[("authorization", auth.as_bytes())],
            config.to_string().as_bytes(),
        )
        .expect("admin PUT");
        assert_eq!(r.status, 200, "configuring {event}: {:?}", r.json());
    }

    /// Sends SIGTERM and waits (at most `limit`) for the process to exit.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for OriginQueue {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The local stack as `make up` starts it (`scripts/stack up`), on free ports and with
/// its own state directory; `scripts/stack down` on drop and, as a backstop, when the
/// test process exits.
pub struct Stack {
    env: Vec<(String, String)>,
    /// Envoy's listener.
    pub edge: SocketAddr,
    /// origin-queue.
    pub queue: SocketAddr,
    /// The demo backend.
    pub backend: SocketAddr,
    /// The generated admin token.
    pub admin_token: String,
}

impl Stack {
    /// Runs `scripts/stack up`; panics with its output if it fails.
    pub fn up() -> Stack {
        Self::up_with(&[])
    }

    /// Same, with extra environment for the script and the processes it starts.
    pub fn up_with(extra: &[(&str, &str)]) -> Stack {
        Self::try_up_with(extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `scripts/stack up` with extra environment (which overrides the chosen ports
    /// and directory); if it fails, runs `scripts/stack down` and returns the output.
    pub fn try_up_with(extra: &[(&str, &str)]) -> Result<Stack, String> {
        let redis_base = (0..50u16)
            .map(|i| {
                STACK_REDIS_PORTS.start
                    + ((std::process::id() as u16 % 200) * 6 + i * 97)
                        % (STACK_REDIS_PORTS.end - STACK_REDIS_PORTS.start)
            })
            .find(|b| claim_redis_ports(*b))
            .expect("no free redis ports");
        let state =
            std::env::temp_dir().join(format!("wr-stack-{}-{redis_base}", std::process::id()));
        let ports = [free_port(), free_port(), free_port(), free_port()];
        let mut env: Vec<(String, String)> = vec![
            ("WR_EDGE_PORT".into(), ports[0].to_string()),
            ("WR_ADMIN_PORT".into(), ports[1].to_string()),
            ("WR_QUEUE_PORT".into(), ports[2].to_string()),
            ("WR_BACKEND_PORT".into(), ports[3].to_string()),
            ("WR_REDIS_PORT".into(), redis_base.to_string()),
            ("WR_STATE_DIR".into(), state.display().to_string()),
            // Debug builds: the test binaries need them anyway, and a release build of
            // the service on top would cost CI minutes (load scenarios ask for release).
            ("WR_PROFILE".into(), "debug".into()),
        ];
        for (key, value) in extra {
            match env.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value.to_string(),
                None => env.push((key.to_string(), value.to_string())),
            }
        }

        let script = workspace_root().join("scripts/stack");
        let exports: String = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        on_exit(&format!(
            "{exports}{} down; rm -rf {}",
            script.display(),
            state.display()
        ));
        let out = Command::new(&script)
            .arg("up")
            .envs(env.iter().cloned())
            .output()
            .expect("run scripts/stack");
        let port_of = |key: &str| -> SocketAddr {
            let port = &env.iter().find(|(k, _)| k == key).expect(key).1;
            format!("127.0.0.1:{port}").parse().expect(key)
        };
        let stack = Stack {
            admin_token: std::fs::read_to_string(state.join("admin-token"))
                .unwrap_or_default()
                .trim()
                .to_owned(),
            edge: port_of("WR_EDGE_PORT"),
            queue: port_of("WR_QUEUE_PORT"),
            backend: port_of("WR_BACKEND_PORT"),
            env,
        };
        if out.status.success() {
            Ok(stack)
        } else {
            // Dropping the stack runs `scripts/stack down`.
            Err(format!(
                "scripts/stack up failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Runs `scripts/stack up` again (must be harmless) and returns its output.
    pub fn up_again(&self) -> std::process::Output {
        Command::new(workspace_root().join("scripts/stack"))
            .arg("up")
            .envs(self.env.iter().cloned())
            .output()
            .unwrap()
    }

    /// Runs `scripts/stack down`.
    pub fn down(&self) -> std::process::Output {
        Command::new(workspace_root().join("scripts/stack"))
            .arg("down")
            .envs(self.env.iter().cloned())
            .output()
            .unwrap()
    }

    /// Stops (`"stop"`) or starts again (`"start"`) the stack's Redis Cluster with
    /// `scripts/redis-cluster`, for outage tests; panics if the script fails.
    pub fn redis(&self, action: &str) {
        let port = self.env_value("WR_REDIS_PORT");
        let out = Command::new(workspace_root().join("scripts/redis-cluster"))
            .arg(action)
            .arg(self.state_dir().join("redis"))
            .arg(port)
            .output()
            .expect("run scripts/redis-cluster");
        assert!(
            out.status.success(),
            "scripts/redis-cluster {action} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Kills (SIGKILL) one of the stack's processes by its pid file (`origin-queue`,
    /// `demo-backend`, `envoy`) and waits until it is gone; [`Stack::up_again`] starts
    /// it again.
    pub fn kill(&self, name: &str) {
        let pid_file = self.state_dir().join(format!("{name}.pid"));
        let pid = std::fs::read_to_string(&pid_file).expect("pid file");
        let pid = pid.trim();
        let _ = Command::new("kill").args(["-9", pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Command::new("kill")
            .args(["-0", pid])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(Instant::now() < deadline, "{name} (pid {pid}) did not die");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A call to origin-queue's admin API (on its own port) with the stack's token.
    pub fn admin(
        &self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> crate::http::Response {
        let auth = format!("Bearer {}", self.admin_token);
        crate::http::request(
            self.queue,
            method,
            path,
            &[("authorization", auth.as_bytes())],
            body.to_string().as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// The key ring's JSON as `scripts/stack` generated it for this stack.
    pub fn key_ring_json(&self) -> String {
        std::fs::read_to_string(self.state_dir().join("keys.json"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// The key ring `scripts/stack` generated for this stack.
    pub fn key_ring(&self) -> wr_pass::KeyRing {
        let json = std::fs::read_to_string(self.state_dir().join("keys.json")).unwrap();
        wr_pass::KeyRing::from_json(&json).unwrap()
    }

    /// A pass for `visitor` of `event`, valid from a second ago for ten minutes, signed
    /// with the stack's active key.
    pub fn pass(&self, event: &str, visitor: &str) -> String {
        let t = crate::fixtures::now();
        let claims = wr_pass::Claims::new(event, visitor, t - 1, t + 600);
        self.key_ring()
            .mint(wr_pass::TokenKind::Pass, &claims)
            .unwrap()
    }

    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(self.env_value("WR_STATE_DIR"))
    }

    fn env_value(&self, key: &str) -> &str {
        &self.env.iter().find(|(k, _)| k == key).expect(key).1
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.down();
    }
}
