//! `jco serve` (npm `@bytecodealliance/jco`, in `edge-js/node_modules`): a `wasi:http`
//! host people run, on Node. It transpiles the component to JavaScript and serves it
//! with one instance for every request (unless told `--isolate-requests`), passing the
//! process's environment to the component.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::fixtures::workspace_root;
use crate::processes::{free_port, wait_answering};

/// The `jco` command of the JavaScript package's dependencies.
pub fn jco_bin() -> PathBuf {
    let bin = workspace_root().join("edge-js/node_modules/.bin/jco");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/install-deps (npm ci in edge-js)",
        bin.display()
    );
    bin
}

/// A running `jco serve`; stopped (and its transpiled files removed) on drop.
pub struct JcoServe {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl JcoServe {
    /// Serves `component` on a free loopback port with `env` (and `extra_args` for
    /// `jco serve`); waits until it answers `probe` (any status), at most 60 s.
    pub fn start(
        component: &Path,
        env: &[(&str, String)],
        extra_args: &[&str],
        probe: &str,
    ) -> JcoServe {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("wr-jco-{}-{port}", std::process::id()));
        let child = Command::new(jco_bin())
            .arg("serve")
            .arg(component)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--jco-dir")
            .arg(&dir)
            .args(extra_args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            // `jco serve` runs the server in a child Node process: a group of their own,
            // so that both stop together.
            .process_group(0)
            .spawn()
            .expect("start jco serve");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let mut served = JcoServe { child, addr, dir };
        wait_answering(
            &mut served.child,
            addr,
            probe,
            Duration::from_secs(60),
            "jco serve",
        );
        served
    }
}

impl Drop for JcoServe {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
