//! A certificate authority and a server certificate for 127.0.0.1, made with the
//! `openssl` command in a scratch folder: what a TLS-only Redis needs in the tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `ca.pem`, `redis.pem` and `redis.key` in `dir` (as `scripts/redis-cluster` reads
/// them for `WR_REDIS_TLS_DIR`): a CA, and a server certificate it signed for the name
/// `localhost` and the address 127.0.0.1. Returns `dir`.
pub fn make_ca_and_server(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (scripts/install-deps installs it)");
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=wr-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "redis.key",
        "-out",
        "redis.csr",
    ]);
    std::fs::write(
        dir.join("redis.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "redis.ext",
        "-out",
        "redis.pem",
    ]);
    dir.to_path_buf()
}
