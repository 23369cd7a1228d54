//! Background processes for tests: a shared Redis Cluster, origin-queue instances and
//! the whole local stack, each in its own module.
//!
//! The cluster is started once per test process, on free ports, in a scratch directory;
//! a watchdog shell stops it when the test process exits, however it exits.

use std::process::{Command, Stdio};

mod commands;
mod origin_queue;
mod ports;
mod redis_cluster;
mod stack;

pub use commands::{command_idle_on_cpu, command_on_cpu};
pub use origin_queue::{
    origin_queue_bin, origin_queue_env, origin_queue_release_bin, OriginQueue, ADMIN_TOKEN,
};
pub use ports::free_port;
pub use redis_cluster::{redis_cluster, RedisCluster};
pub use stack::Stack;

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

/// Waits until the server `child` started answers `probe` at `addr` (any status), at
/// most `limit`; panics, naming it `what`, if it exits or does not answer in time.
pub fn wait_answering(
    child: &mut std::process::Child,
    addr: std::net::SocketAddr,
    probe: &str,
    limit: std::time::Duration,
    what: &str,
) {
    let deadline = std::time::Instant::now() + limit;
    while crate::http::get(addr, probe, &[]).is_err() {
        assert!(child.try_wait().ok().flatten().is_none(), "{what} exited");
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not answer within {limit:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
