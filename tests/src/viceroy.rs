//! Viceroy, Fastly's local Compute runtime (`cargo install viceroy`, by
//! `scripts/install-deps`): the adapter `edge-fastly` served on a loopback port in front
//! of the stack ([`Viceroy::serve`]), and its in-runtime tests run with Viceroy as
//! cargo's runner ([`test_in_viceroy`]).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::fixtures::{build_release, target_dir, tool, workspace_root};
use crate::processes::{free_port, wait_answering};

/// The `viceroy` command.
pub fn viceroy_bin() -> PathBuf {
    tool("viceroy")
}

/// The adapter's `.wasm`, built once per test process.
pub fn fastly_wasm() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        build_release("wr-edge-fastly", "wasm32-wasip1");
        target_dir().join("wasm32-wasip1/release/wr-edge-fastly.wasm")
    })
}

/// Runs `cargo test -p wr-edge-fastly --target wasm32-wasip1` with Viceroy as the
/// runner; its output (which must say every test passed).
pub fn test_in_viceroy() -> Result<String, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let runner = format!("{} run --", viceroy_bin().display());
    let out = Command::new(cargo)
        .args([
            "test",
            "-q",
            "-p",
            "wr-edge-fastly",
            "--target",
            "wasm32-wasip1",
        ])
        .env("CARGO_TARGET_WASM32_WASIP1_RUNNER", runner)
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("run cargo: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// One configuration of the adapter for Viceroy: the backends, the Config Store's
/// entries, the key ring (passed through the environment, never written to the file).
pub struct Manifest {
    /// Where the `origin` backend is.
    pub origin: SocketAddr,
    /// Where the `queue` backend (origin-queue) is.
    pub queue: SocketAddr,
    /// The Config Store `wr_edge`: (key, value).
    pub config_store: Vec<(&'static str, String)>,
}

impl Manifest {
    /// The `fastly.toml` text.
    fn toml(&self) -> String {
        let mut text = format!(
            "manifest_version = 3\nname = \"wr-edge-test\"\nlanguage = \"rust\"\n\n\
             [local_server.backends.origin]\nurl = \"http://{}\"\n\n\
             [local_server.backends.queue]\nurl = \"http://{}\"\n\n\
             [local_server.config_stores.wr_edge]\nformat = \"inline-toml\"\n\n\
             [local_server.config_stores.wr_edge.contents]\n",
            self.origin, self.queue
        );
        for (key, value) in &self.config_store {
            // A TOML basic string: JSON's string escaping is a subset of it.
            text.push_str(&format!(
                "{key} = {}\n",
                serde_json::Value::from(value.as_str())
            ));
        }
        text.push_str(
            "\n[local_server.secret_stores]\n\
             wr_edge_secrets = [{ key = \"keys\", env = \"WR_EDGE_KEYS\" }]\n",
        );
        text
    }
}

/// A running `viceroy serve`; stopped (and a manifest it wrote removed) on drop.
pub struct Viceroy {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The manifest this process wrote (removed on drop).
    manifest: Option<PathBuf>,
    /// Every line the service wrote to a logging endpoint, as Viceroy prints them
    /// (`<endpoint> :: <line>`).
    logged: Arc<Mutex<Vec<String>>>,
}

impl Viceroy {
    /// Serves the adapter with `manifest` and the key ring `keys` (JSON); waits until it
    /// answers (any status), at most 60 s.
    pub fn serve(manifest: &Manifest, keys: &str) -> Viceroy {
        let path = std::env::temp_dir().join(format!(
            "wr-viceroy-{}-{}.toml",
            std::process::id(),
            free_port()
        ));
        std::fs::write(&path, manifest.toml()).expect("write fastly.toml");
        Viceroy::start(&path, keys, Some(path.clone()))
    }

    /// Serves the adapter with the manifest file at `path` (left in place).
    pub fn serve_file(path: &Path, keys: &str) -> Viceroy {
        Viceroy::start(path, keys, None)
    }

    fn start(path: &Path, keys: &str, owned: Option<PathBuf>) -> Viceroy {
        let wasm = fastly_wasm();
        let port = free_port();
        let mut child = Command::new(viceroy_bin())
            .arg("serve")
            .arg("-C")
            .arg(path)
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .arg(wasm)
            .env("WR_EDGE_KEYS", keys)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start viceroy");
        let logged = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("viceroy's stdout");
        let sink = logged.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let mut served = Viceroy {
            child,
            addr,
            manifest: owned,
            logged,
        };
        wait_answering(
            &mut served.child,
            addr,
            "/healthz",
            Duration::from_secs(60),
            "viceroy",
        );
        served
    }

    /// The lines logged to `endpoint` so far (without the endpoint's prefix).
    pub fn logged(&self, endpoint: &str) -> Vec<String> {
        let prefix = format!("{endpoint} :: ");
        self.logged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    }
}

impl Drop for Viceroy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(path) = &self.manifest {
            let _ = std::fs::remove_file(path);
        }
    }
}
