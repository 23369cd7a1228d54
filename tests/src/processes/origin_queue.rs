//! origin-queue for tests: its binary (built once per test process), the settings it
//! starts with, and a running instance.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::ports::free_port;
use crate::fixtures::workspace_root;
use crate::http;

/// The origin-queue binary (debug build), built once per test process.
pub fn origin_queue_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_origin_queue(false)).clone()
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
