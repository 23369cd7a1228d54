//! Loopback ports for the processes tests start: handed out once per test process, and
//! a Redis Cluster's twelve (six nodes, six bus ports) claimed together.

use std::net::TcpListener;
use std::path::Path;
use std::sync::OnceLock;

/// First ports of the test clusters (`RedisCluster`), and of the stacks' clusters. Each
/// node also listens on its port + 10000 (the cluster bus), and every one of those must
/// stay below the kernel's ephemeral range (32768 and up): an outgoing connection may
/// take any ephemeral port as its own at any moment, and a node whose bus port is taken
/// fails to start. The two ranges, their bus ports and `make up`'s 7000-7005 (bus
/// 17000-17005) do not overlap.
pub(super) const CLUSTER_PORTS: std::ops::Range<u16> = 14_000..16_990;
pub(super) const STACK_REDIS_PORTS: std::ops::Range<u16> = 11_000..13_990;
/// Ports of the other servers tests start (origin-queue, upstreams, Envoy, runtimes):
/// below the ephemeral range too, so that no outgoing connection of a busy neighbour
/// (k6, a crowd, Redis clients) can take one between the check and the bind, and above
/// both clusters' bus ports (up to 26,989).
const SERVER_PORTS: std::ops::Range<u16> = 27_000..32_700;

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
/// all twelve are free now, none was handed out before, and no other test process
/// holds one ([`claim_across_processes`]: two modules' clusters once shared a port, and
/// the second cluster's create waited on a node of the first); false otherwise, with
/// nothing left claimed.
pub(super) fn claim_redis_ports(base: u16) -> bool {
    let ports: Vec<u16> = (base..base + 6).flat_map(|p| [p, p + 10000]).collect();
    let mut book = handed_out();
    if ports.iter().any(|p| book.contains(p) || !free(*p)) {
        return false;
    }
    let mut claimed = Vec::new();
    for &port in &ports {
        if !claim_across_processes(port) {
            claimed.into_iter().for_each(release_across_processes);
            return false;
        }
        claimed.push(port);
    }
    book.extend(ports);
    true
}

/// Gives back a port this process claimed with [`claim_across_processes`].
fn release_across_processes(port: u16) {
    let _ = std::fs::remove_file(claims_dir().join(port.to_string()));
}

/// The shared folder of claims, one file per port.
fn claims_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("wr-test-ports")
}

/// Claims `port` for this test process against every other test process of the
/// machine (test modules run side by side, each handing out ports before its servers
/// bind them): a file named after the port in a shared folder, created exclusively and
/// holding the owner's process id. A file whose owner has exited is moved aside (one
/// rename wins) and the claim tried again.
fn claim_across_processes(port: u16) -> bool {
    use std::io::Write;
    let dir = claims_dir();
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(port.to_string());
    let me = std::process::id();
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                let _ = file.write_all(me.to_string().as_bytes());
                return true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read_to_string(&path).unwrap_or_default();
                let alive = match owner.trim().parse::<u32>() {
                    Ok(pid) => pid == me || Path::new(&format!("/proc/{pid}")).exists(),
                    // Being written by its owner right now.
                    Err(_) => true,
                };
                if alive {
                    return false;
                }
                let aside = dir.join(format!("{port}.stale.{me}"));
                if std::fs::rename(&path, &aside).is_ok() {
                    let _ = std::fs::remove_file(aside);
                }
            }
            Err(_) => return false,
        }
    }
    false
}

/// A free loopback port of [`SERVER_PORTS`], never the same twice on the machine while
/// the test process that took it runs ([`claim_across_processes`]). Each test process
/// starts looking at a place of its own in the range (from its process id). No outgoing
/// connection takes these ports, and no other test process is handed one of them; a
/// program outside the tests could still bind one first.
pub fn free_port() -> u16 {
    let mut book = handed_out();
    let span = u32::from(SERVER_PORTS.end - SERVER_PORTS.start);
    let start = (std::process::id().wrapping_mul(2_654_435_761) >> 7) % span;
    let port = (0..span)
        .map(|i| SERVER_PORTS.start + ((start + i * 7) % span) as u16)
        .find(|port| !book.contains(port) && free(*port) && claim_across_processes(*port))
        .expect("a free loopback port between 27000 and 32699");
    book.insert(port);
    port
}
