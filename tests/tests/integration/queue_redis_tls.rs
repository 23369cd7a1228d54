//! origin-queue on a Redis Cluster that speaks only TLS and wants a password, as
//! managed Redis with encryption in transit does (ElastiCache, Memorystore, Azure Cache
//! for Redis): `rediss://` nodes, the CA to trust (`WR_REDIS_CA_FILE`), AUTH
//! (`WR_REDIS_PASSWORD`). When the certificate or the password is wrong it stops at
//! start and says which, within a bounded time, and never prints the password.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::json;
use wr_tests::fixtures::wait_until;
use wr_tests::processes::{origin_queue_bin, OriginQueue, RedisCluster};
use wr_tests::queue_client::{configure, join, status};
use wr_tests::tls_certs::make_ca_and_server;

const PASSWORD: &str = "tls-test-password-0123";

/// The module's TLS-only cluster with a password, and the folder of its certificates.
fn tls_cluster() -> &'static (RedisCluster, PathBuf) {
    static CLUSTER: OnceLock<(RedisCluster, PathBuf)> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let certs = std::env::temp_dir().join(format!("wr-redis-tls-{}", std::process::id()));
        make_ca_and_server(&certs);
        let cluster = RedisCluster::start_with(&[
            ("WR_REDIS_TLS_DIR", certs.to_str().unwrap()),
            ("WR_REDIS_PASSWORD", PASSWORD),
        ]);
        (cluster, certs)
    })
}

fn rediss_nodes() -> Vec<String> {
    tls_cluster()
        .0
        .nodes
        .iter()
        .map(|n| format!("rediss://{n}"))
        .collect()
}

fn ca_file() -> String {
    tls_cluster().1.join("ca.pem").to_str().unwrap().to_owned()
}

/// Runs `origin-queue serve` with `env` until it exits (at most 30 s); its stderr.
fn refused_start(env: &[(&str, &str)]) -> String {
    let mut child = Command::new(origin_queue_bin())
        .arg("serve")
        .env_remove("WR_KEYS_FILE")
        .env("WR_KEYS", wr_tests::fixtures::KEYS_JSON)
        .env("WR_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("origin-queue still running after 30 s with a wrong Redis setting");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "it started: {stderr}");
    stderr
}

#[test]
fn a_visitor_joins_and_is_admitted_over_tls_with_a_password() {
    let nodes = rediss_nodes().join(",");
    let ca = ca_file();
    let q = OriginQueue::start(
        &[],
        &[
            ("WR_REDIS_NODES", &nodes),
            ("WR_REDIS_CA_FILE", &ca),
            ("WR_REDIS_PASSWORD", PASSWORD),
        ],
    );
    configure(q.addr, "tls", json!({}));
    let (_, ticket) = join(q.addr, "tls", None);
    assert!(
        wait_until(Duration::from_secs(20), || {
            status(q.addr, "tls", &ticket).json()["status"] == "admitted"
        }),
        "not admitted over TLS: {:?}",
        status(q.addr, "tls", &ticket).json()
    );
}

#[test]
fn a_certificate_nobody_trusts_stops_it_at_start() {
    let nodes = rediss_nodes().join(",");
    let stderr = refused_start(&[("WR_REDIS_NODES", &nodes), ("WR_REDIS_PASSWORD", PASSWORD)]);
    assert!(
        stderr.contains("cannot reach Redis Cluster")
            && stderr.to_lowercase().contains("certificate"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(PASSWORD),
        "the password was printed: {stderr}"
    );
}

#[test]
fn a_wrong_password_stops_it_at_start() {
    let nodes = rediss_nodes().join(",");
    let ca = ca_file();
    let stderr = refused_start(&[
        ("WR_REDIS_NODES", &nodes),
        ("WR_REDIS_CA_FILE", &ca),
        ("WR_REDIS_PASSWORD", "not-the-password"),
    ]);
    assert!(stderr.contains("cannot reach Redis Cluster"), "{stderr}");
    assert!(
        !stderr.contains("not-the-password"),
        "the password was printed: {stderr}"
    );
}

#[test]
fn plain_redis_against_the_tls_cluster_stops_it_at_start() {
    let nodes = tls_cluster().0.nodes.join(",");
    let stderr = refused_start(&[("WR_REDIS_NODES", &nodes), ("WR_REDIS_PASSWORD", PASSWORD)]);
    assert!(stderr.contains("cannot reach Redis Cluster"), "{stderr}");
}

#[test]
fn a_password_in_a_node_url_is_refused_without_being_printed() {
    let stderr = refused_start(&[(
        "WR_REDIS_NODES",
        "rediss://app:hunter2-secret@127.0.0.1:6379",
    )]);
    assert!(
        stderr.contains("WR_REDIS_PASSWORD") && !stderr.contains("hunter2-secret"),
        "{stderr}"
    );
}
