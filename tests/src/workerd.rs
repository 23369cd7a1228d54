//! Cloudflare's workerd runtime (npm `workerd`, installed in `edge-js/node_modules` by
//! `scripts/install-deps`): a scratch directory laid out like the JavaScript package,
//! with a generated `config.capnp`, for `workerd test` and `workerd serve`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fixtures::js_package;

/// The workerd binary.
pub fn workerd_bin() -> PathBuf {
    let bin = js_package().join("node_modules/.bin/workerd");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/install-deps (npm install in edge-js)",
        bin.display()
    );
    bin
}

/// The package files a worker needs, by module name (their path in the package).
const PACKAGE_MODULES: [&str; 7] = [
    "js/edge.js",
    "js/pow.js",
    "pkg/wr_edge_js.js",
    "test/run-cases.js",
    "test/bench.js",
    "worker/handler.js",
    "worker/worker.js",
];

/// A scratch directory holding a copy of the package's modules and extra files, for a
/// generated `config.capnp` ([`WorkerdDir::write_config`]).
pub struct WorkerdDir {
    /// The directory.
    pub path: PathBuf,
}

impl WorkerdDir {
    /// Lays out the package modules plus `extra` (name, contents) in a fresh directory.
    pub fn new(label: &str, extra: &[(&str, &[u8])]) -> WorkerdDir {
        let path = std::env::temp_dir().join(format!("wr-workerd-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let package = js_package();
        let mut files: Vec<(String, Vec<u8>)> = PACKAGE_MODULES
            .iter()
            .chain(&[
                "test/workerd.js",
                "test/bench-workerd.js",
                "pkg/wr_edge_js_bg.wasm",
            ])
            .map(|name| (name.to_string(), read(&package.join(name))))
            .collect();
        files.extend(extra.iter().map(|(n, c)| (n.to_string(), c.to_vec())));
        for (name, contents) in files {
            let file = path.join(&name);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, contents).unwrap();
        }
        WorkerdDir { path }
    }

    /// Writes `config.capnp` for `worker` (the service `main`); returns its path.
    pub fn write_config(&self, worker: &WorkerConfig) -> PathBuf {
        let main = worker.main;
        let mut modules = vec![format!("(name = \"{main}\", esModule = embed \"{main}\")")];
        for name in PACKAGE_MODULES.iter().filter(|n| **n != main) {
            modules.push(format!("(name = \"{name}\", esModule = embed \"{name}\")"));
        }
        modules.push(
            "(name = \"pkg/wr_edge_js_bg.wasm\", wasm = embed \"pkg/wr_edge_js_bg.wasm\")".into(),
        );
        for name in worker.json_modules {
            modules.push(format!("(name = \"{name}\", json = embed \"{name}\")"));
        }
        let mut services = vec!["(name = \"main\", worker = .worker)".to_owned()];
        services.extend(worker.services.iter().cloned());
        let outbound = worker
            .global_outbound
            .map(|s| format!("globalOutbound = \"{s}\","))
            .unwrap_or_default();
        let text = format!(
            r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ {services} ],
  sockets = [ {sockets} ],
);
const worker :Workerd.Worker = (
  modules = [ {modules} ],
  compatibilityDate = "2026-11-01",
  bindings = [ {bindings} ],
  {outbound}
);
"#,
            services = services.join(",\n    "),
            sockets = worker.sockets.join(",\n    "),
            modules = modules.join(",\n    "),
            bindings = worker.bindings.join(",\n    "),
        );
        let config = self.path.join("config.capnp");
        std::fs::write(&config, text).unwrap();
        config
    }
}

/// One worker and what surrounds it, as capnp text pieces.
#[derive(Default)]
pub struct WorkerConfig<'a> {
    /// The main module's name (a package path such as `worker/worker.js`).
    pub main: &'a str,
    /// Files of the directory loaded as JSON modules.
    pub json_modules: &'a [&'a str],
    /// Binding entries, e.g. `(name = "X", text = "y")`.
    pub bindings: Vec<String>,
    /// Other services, e.g. a network service for `global_outbound`.
    pub services: Vec<String>,
    /// Sockets, e.g. `(name = "http", address = "127.0.0.1:8080", http = (), service = "main")`.
    pub sockets: Vec<String>,
    /// The service the worker's `fetch()` goes out through.
    pub global_outbound: Option<&'a str>,
}

impl Drop for WorkerdDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs `workerd test` on `config`, bounded in time; (success, stdout + stderr).
pub fn workerd_test(config: &Path) -> (bool, String) {
    let out = Command::new("timeout")
        .arg("120")
        .arg(workerd_bin())
        .arg("test")
        .arg(config)
        .current_dir(config.parent().unwrap())
        .output()
        .expect("run workerd");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
