//! The whole local stack as `make up` starts it, for end-to-end tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::on_exit;
use super::ports::{claim_redis_ports, free_port, STACK_REDIS_PORTS};
use crate::fixtures::workspace_root;

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
        let out = run_stack_script("up", &env);
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
        run_stack_script("up", &self.env)
    }

    /// Runs `scripts/stack down`.
    pub fn down(&self) -> std::process::Output {
        run_stack_script("down", &self.env)
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
        wr_pass::KeyRing::from_json(&self.key_ring_json()).unwrap()
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

    /// The stack's Redis Cluster nodes (`127.0.0.1:port`).
    pub fn redis_nodes(&self) -> Vec<String> {
        let base: u16 = self.env_value("WR_REDIS_PORT").parse().expect("a port");
        (base..base + 6).map(|p| format!("127.0.0.1:{p}")).collect()
    }

    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(self.env_value("WR_STATE_DIR"))
    }

    /// A counter or gauge of the stack's Envoy (`cluster.origin_queue.upstream_rq_retry`,
    /// …) from its admin port; 0 if Envoy has not made it yet.
    pub fn envoy_stat(&self, name: &str) -> u64 {
        let admin = format!("127.0.0.1:{}", self.env_value("WR_ADMIN_PORT"));
        crate::envoy::admin_stat(admin.parse().expect("admin address"), name)
    }

    fn env_value(&self, key: &str) -> &str {
        &self.env.iter().find(|(k, _)| k == key).expect(key).1
    }
}

/// Runs `scripts/stack <verb>` with the stack's environment; its output.
fn run_stack_script(verb: &str, env: &[(String, String)]) -> std::process::Output {
    Command::new(workspace_root().join("scripts/stack"))
        .arg(verb)
        .envs(env.iter().cloned())
        .output()
        .expect("run scripts/stack")
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.down();
    }
}
