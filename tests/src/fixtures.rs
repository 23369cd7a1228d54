//! Paths, keys and passes shared by the tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wr_pass::{Claims, KeyRing, TokenKind};

/// A test key ring: `k1` (old) and `k2` (active). Test-only secrets.
pub const KEYS_JSON: &str = r#"{"active":"k2","keys":{
    "k1":"dGVzdC1rZXktb25lLXRlc3Qta2V5LW9uZS10ZXN0LWtleS0x",
    "k2":"dGVzdC1rZXktdHdvLXRlc3Qta2V5LXR3by10ZXN0LWtleS0y"}}"#;

/// A key ring holding only a key the filter does not know, for forgeries.
pub const FOREIGN_KEYS_JSON: &str =
    r#"{"active":"k2","keys":{"k2":"Zm9yZWlnbi1rZXktZm9yZWlnbi1rZXktZm9yZWlnbi1rZXk="}}"#;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The cargo target directory (`CARGO_TARGET_DIR` or the workspace's `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The release build of the filter, built once per test process if needed.
/// `WR_FILTER_WASM` names another build instead (e.g. an older commit's, to show that a
/// new test fails without the change it covers).
pub fn filter_wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("WR_FILTER_WASM") {
                let path = PathBuf::from(path);
                assert!(path.is_file(), "WR_FILTER_WASM={path:?} is not a file");
                return path;
            }
            build_release("edge-filter", "wasm32-wasip1");
            let path = target_dir().join("wasm32-wasip1/release/edge_filter.wasm");
            assert!(path.exists(), "{} missing after build", path.display());
            path
        })
        .clone()
}

/// Builds one of the benchmark's own wasm crates (each its own workspace under
/// `tests/`) into the shared target directory; returns the module's path.
pub fn side_wasm(crate_dir: &str) -> PathBuf {
    let root = workspace_root();
    let target = root.join("target").join(crate_dir);
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "-q",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--manifest-path",
        ])
        .arg(root.join("tests").join(crate_dir).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building tests/{crate_dir} failed");
    target
        .join("wasm32-wasip1/release")
        .join(format!("{}.wasm", crate_dir.replace('-', "_")))
}

/// The JavaScript package's directory (`edge-js/`), with `pkg/` built by wasm-bindgen
/// from the current source, once per test process (`make js` does the same).
pub fn js_package() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = workspace_root();
            build_release("wr-edge-js", "wasm32-unknown-unknown");
            let wasm = target_dir().join("wasm32-unknown-unknown/release/wr_edge_js.wasm");
            let package = root.join("edge-js");
            let status = Command::new(tool("wasm-bindgen"))
                .args(["--target", "web", "--out-dir"])
                .arg(package.join("pkg"))
                .arg(&wasm)
                .status()
                .expect("run wasm-bindgen (scripts/install-deps installs it)");
            assert!(status.success(), "wasm-bindgen failed");
            package
        })
        .clone()
}

/// `cargo build --release -p <package> --target <target>` in the workspace; panics if
/// it fails (its errors are on the terminal).
pub fn build_release(package: &str, target: &str) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            package,
            "--target",
            target,
            "--release",
        ])
        .current_dir(workspace_root())
        .status()
        .expect("run cargo");
    assert!(status.success(), "building {package} for {target} failed");
}

/// A tool from PATH, or from cargo's bin directory when PATH lacks it.
pub fn tool(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    if on_path {
        return PathBuf::from(name);
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    home.join("bin").join(name)
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The test key ring.
pub fn keys() -> KeyRing {
    KeyRing::from_json(KEYS_JSON).unwrap()
}

/// A pass signed by `ring` for (event, visitor), valid from `iat` to `exp`.
pub fn pass_with(ring: &KeyRing, event: &str, visitor: &str, iat: u64, exp: u64) -> String {
    ring.mint(TokenKind::Pass, &Claims::new(event, visitor, iat, exp))
        .unwrap()
}

/// A pass from the test ring valid for the next ten minutes.
pub fn pass(event: &str, visitor: &str) -> String {
    let t = now();
    pass_with(&keys(), event, visitor, t - 1, t + 600)
}

/// The filter configuration used by the tests, with overrides merged in.
pub fn filter_config(overrides: serde_json::Value) -> String {
    let mut config = serde_json::json!({
        "keys": serde_json::from_str::<serde_json::Value>(KEYS_JSON).unwrap(),
        "events": [
            {"id": "concert", "protected_prefixes": ["/reserve", "/api/"]},
            {"id": "other", "protected_prefixes": ["/other"]}
        ],
        "bypass_prefixes": ["/static/"],
        "client_rate_limit": {"requests_per_second": 1000, "burst": 1000},
        "visitor_rate_limit": {"requests_per_second": 1000, "burst": 1000},
        "queue_rate_limit": {"requests_per_second": 1000, "burst": 1000}
    });
    if let (Some(base), Some(extra)) = (config.as_object_mut(), overrides.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    config.to_string()
}

/// The filter configuration of the edge benchmarks: the client and visitor rate limits
/// on but never reached (so their path still runs), or both off.
pub fn bench_filter_config(rate_limits: bool) -> String {
    let never_reached = serde_json::json!({"requests_per_second": 1_000_000, "burst": 1_000_000});
    let limit = if rate_limits {
        never_reached
    } else {
        serde_json::Value::Null
    };
    filter_config(serde_json::json!({"client_rate_limit": limit, "visitor_rate_limit": limit}))
}

/// Checks `done` every 50 ms until it holds (true) or `limit` has passed (false): tests
/// wait on conditions, never for a fixed time.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// The number in environment variable `name`, or `default` when unset or unreadable
/// (for the benchmarks' knobs).
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The documents of a YAML file of the workspace, as JSON (Python's PyYAML, which
/// `scripts/install-deps` installs); empty documents left out. Panics, naming the
/// file, if it is not valid YAML.
pub fn yaml_documents(relative: &str) -> Vec<serde_json::Value> {
    let path = workspace_root().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    yaml_text_documents(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

/// The documents of a YAML text, as JSON (PyYAML); empty documents left out. Err: the
/// parser's message.
pub fn yaml_text_documents(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let out = output_with_stdin(
        Command::new("python3").args(["-c", "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d is not None]))"]),
        text.as_bytes(),
        "python3 with PyYAML (scripts/install-deps)",
    );
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("PyYAML's JSON"))
}

/// Runs `command` with `input` on its standard input (written from a thread of its own,
/// so a child that answers before reading everything cannot block) and returns what it
/// printed. Panics with `what` (the program and where it comes from) if it cannot start.
pub fn output_with_stdin(command: &mut Command, input: &[u8], what: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut stdin = child.stdin.take().expect("a piped stdin");
    std::thread::scope(|scope| {
        // A child that exits without reading it all closes the pipe: not this helper's error.
        scope.spawn(move || {
            let _ = stdin.write_all(input);
        });
        child.wait_with_output().expect("the child's output")
    })
}
