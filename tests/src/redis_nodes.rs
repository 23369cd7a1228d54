//! Talking to single Redis Cluster nodes with `redis-cli`: which node serves a key,
//! its replica, its process id, its replication state. For benchmarks and fault tests.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// `redis-cli -p PORT ARGS…`, its standard output trimmed.
pub fn redis_cli(port: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port)
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Bytes of memory the node at `port` uses (`INFO memory`'s `used_memory`; 0 if unread).
pub fn used_memory(port: &str) -> u64 {
    redis_cli(port, &["INFO", "memory"])
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The port of the master that owns `key`'s slot, among `nodes` (`host:port`).
pub fn master_for(nodes: &[String], key: &str) -> String {
    for node in nodes {
        let port = node.rsplit(':').next().unwrap();
        let reply = redis_cli(port, &["EXISTS", key]);
        if !reply.contains("MOVED") && redis_cli(port, &["ROLE"]).starts_with("master") {
            return port.to_owned();
        }
    }
    panic!("no master owns {key}");
}

/// When `event`'s last admission step ran (unix ms): every step, whatever the event's
/// phase, writes its bucket's `tokens_at_ms`. `None` before the first.
pub fn last_admission_step_ms(nodes: &[String], event: &str) -> Option<u64> {
    let key = format!("{{wr:{event}}}:cfg");
    redis_cli(&master_for(nodes, &key), &["HGET", &key, "tokens_at_ms"])
        .parse()
        .ok()
}

/// Waits (at most `within`) until an admission step of `event` has run after this
/// call: what a test waits for before it says that nobody was admitted (the step had
/// its chance). False if none ran in time.
pub fn wait_for_admission_step(nodes: &[String], event: &str, within: Duration) -> bool {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    crate::fixtures::wait_until(within, || {
        last_admission_step_ms(nodes, event).is_some_and(|at| at > since)
    })
}

/// The port of a replica of the master at `master_port`.
pub fn replica_of(master_port: &str) -> String {
    redis_cli(master_port, &["INFO", "replication"])
        .lines()
        .find(|l| l.starts_with("slave0:"))
        .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("port=")))
        .expect("a replica")
        .to_owned()
}

/// The process id of the node at `port`.
pub fn pid_of(port: &str) -> String {
    redis_cli(port, &["INFO", "server"])
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .map(|p| p.trim().to_owned())
        .expect("pid")
}

/// Waits (at most 20 s) until the master at `port` has a replica in sync: a new
/// cluster reports ok before its replicas finish their first sync, and a replica that
/// never synced will not take over.
pub fn wait_replica_online(port: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !redis_cli(port, &["INFO", "replication"]).contains("state=online") {
        assert!(
            Instant::now() < deadline,
            "the replica of {port} never synced"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (at most 20 s) until the first replica of the master at `port` has every
/// write the master has (its offset equals the master's).
pub fn wait_replica_caught_up(port: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = redis_cli(port, &["INFO", "replication"]);
        let field = |prefix: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
        };
        let master_offset = field("master_repl_offset:");
        let replica_offset = field("slave0:").and_then(|l| {
            l.split(',')
                .find_map(|f| f.strip_prefix("offset=").map(str::to_owned))
        });
        if master_offset.is_some() && master_offset == replica_offset {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replica of {port} did not catch up: {info}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}
