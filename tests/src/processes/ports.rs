//! Loopback ports for the processes tests start: handed out once per test process, and
//! a Redis Cluster's twelve (six nodes, six bus ports) claimed together.

use std::net::TcpListener;
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
/// all twelve are free now and none was handed out before; false otherwise.
pub(super) fn claim_redis_ports(base: u16) -> bool {
    let ports: Vec<u16> = (base..base + 6).flat_map(|p| [p, p + 10000]).collect();
    let mut book = handed_out();
    if ports.iter().any(|p| book.contains(p) || !free(*p)) {
        return false;
    }
    book.extend(ports);
    true
}

/// A free loopback port of [`SERVER_PORTS`], never the same twice in one test process.
/// Each test process starts looking at a place of its own in the range (from its process
/// id), so that processes running side by side rarely look at the same ports; a port is
/// still free only until someone binds it, but no outgoing connection takes these.
pub fn free_port() -> u16 {
    let mut book = handed_out();
    let span = u32::from(SERVER_PORTS.end - SERVER_PORTS.start);
    let start = (std::process::id().wrapping_mul(2_654_435_761) >> 7) % span;
    let port = (0..span)
        .map(|i| SERVER_PORTS.start + ((start + i * 7) % span) as u16)
        .find(|port| !book.contains(port) && free(*port))
        .expect("a free loopback port between 27000 and 32699");
    book.insert(port);
    port
}
