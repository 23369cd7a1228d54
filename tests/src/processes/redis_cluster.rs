//! A six-node Redis Cluster of `scripts/redis-cluster`, in a scratch directory, and the
//! one every test of a binary shares.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use super::on_exit;
use super::ports::{claim_redis_ports, CLUSTER_PORTS};
use crate::fixtures::workspace_root;

/// A six-node Redis Cluster in a scratch directory; stopped when the test process exits.
pub struct RedisCluster {
    dir: PathBuf,
    base: u16,
    /// Settings of `scripts/redis-cluster` (TLS, password) it was started with.
    env: Vec<(String, String)>,
    /// Seed nodes as `host:port`.
    pub nodes: Vec<String>,
}

impl RedisCluster {
    /// Starts a new cluster on free ports.
    pub fn start() -> RedisCluster {
        Self::start_with(&[])
    }

    /// Starts a new cluster on free ports with settings of `scripts/redis-cluster` in
    /// its environment (`WR_REDIS_TLS_DIR`, `WR_REDIS_PASSWORD`).
    pub fn start_with(env: &[(&str, &str)]) -> RedisCluster {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
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
                .envs(env.iter().map(|(k, v)| (k, v)))
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
                return RedisCluster {
                    dir,
                    base,
                    env,
                    nodes,
                };
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
            .envs(self.env.iter().map(|(k, v)| (k, v)))
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

/// The cluster shared by the tests of this process (one module's, as run-tests runs them): its seed nodes.
pub fn redis_cluster() -> &'static Vec<String> {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    &CLUSTER.get_or_init(RedisCluster::start).nodes
}
