//! The deployment files checked by the validators their platforms publish (what
//! `scripts/install-deps` installs): Kubernetes objects by `kubernetes-validate`
//! against the official schemas of a Kubernetes version, strictly; Istio objects by
//! Istio's own schemas as `@kubernetes-models/istio` publishes them
//! (`tests/deploy-check/istio.mjs`); compose files by `docker-compose config`;
//! kustomize overlays rendered by `kubectl kustomize`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::fixtures::{output_with_stdin, workspace_root, yaml_text_documents};

/// The oldest and the newest Kubernetes versions the manifests are claimed for (the
/// README's deployment section names them).
pub const KUBERNETES_VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];

/// The Istio version whose schemas the Istio objects are checked against (the
/// `@kubernetes-models/istio` release in `tests/deploy-check/package-lock.json`).
pub const ISTIO_VERSION: &str = "1.29.2";

/// The folder of the Istio checker and of the compose validator's virtualenv.
pub fn deploy_check_dir() -> PathBuf {
    workspace_root().join("tests/deploy-check")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether an object is Istio's (its API group ends in `istio.io`).
pub fn is_istio(doc: &Value) -> bool {
    doc["apiVersion"]
        .as_str()
        .and_then(|v| v.split_once('/'))
        .is_some_and(|(group, _)| group.ends_with("istio.io"))
}

/// Validates Kubernetes objects with `kubernetes-validate --strict` against `version`.
/// Err: the validator's messages. An object whose kind the version has no schema for is
/// an error here (the tool itself only warns).
pub fn kubernetes_validate(docs: &[Value], version: &str) -> Result<(), String> {
    let file = tempfile("k8s", "yaml");
    let yaml: Vec<String> = docs.iter().map(|d| d.to_string()).collect();
    std::fs::write(&file, yaml.join("\n---\n")).unwrap();
    let out = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict"])
        .args(["-k", version])
        .arg(&file)
        .output()
        .expect("python3 with kubernetes-validate (scripts/install-deps)");
    let _ = std::fs::remove_file(&file);
    let said = text(&out);
    if !out.status.success() {
        return Err(said);
    }
    let passed = said.matches(" passed for resource ").count();
    if passed != docs.len() {
        return Err(format!(
            "{passed} of {} objects checked against Kubernetes {version} (a kind with no schema?):\n{said}",
            docs.len()
        ));
    }
    Ok(())
}

/// Validates Istio objects against Istio's schemas ([`ISTIO_VERSION`]), unknown fields
/// included. Err: the checker's messages.
pub fn istio_validate(docs: &[Value]) -> Result<(), String> {
    let out = output_with_stdin(
        Command::new("node").arg(deploy_check_dir().join("istio.mjs")),
        Value::from(docs.to_vec()).to_string().as_bytes(),
        "node (scripts/install-deps)",
    );
    let said = text(&out);
    assert!(
        said.starts_with(&format!("istio {ISTIO_VERSION}\n")),
        "the Istio schemas are not Istio {ISTIO_VERSION}'s (run scripts/install-deps): {said}"
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(said)
    }
}

/// Every object checked by its platform's validator: Istio's against Istio's schemas,
/// the rest against each of [`KUBERNETES_VERSIONS`].
pub fn validate(docs: &[Value]) -> Result<(), String> {
    let (istio, kubernetes): (Vec<Value>, Vec<Value>) = docs.iter().cloned().partition(is_istio);
    let mut problems = Vec::new();
    if !istio.is_empty() {
        if let Err(e) = istio_validate(&istio) {
            problems.push(e);
        }
    }
    if !kubernetes.is_empty() {
        for version in KUBERNETES_VERSIONS {
            if let Err(e) = kubernetes_validate(&kubernetes, version) {
                problems.push(e);
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// `docker-compose config` on `file` with `env`: the resolved file, or Err with the
/// tool's message.
pub fn compose_config(file: &Path, env: &[(&str, &str)]) -> Result<String, String> {
    let out = Command::new(deploy_check_dir().join("compose-venv/bin/docker-compose"))
        .arg("-f")
        .arg(file)
        .arg("config")
        .env_remove("WR_ADMIN_TOKEN")
        .envs(env.iter().copied())
        .output()
        .expect("docker-compose in tests/deploy-check/compose-venv (scripts/install-deps)");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(text(&out))
    }
}

/// `kubectl kustomize dir`: the rendered objects, or Err with kustomize's message.
pub fn kustomize(dir: &Path) -> Result<Vec<Value>, String> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl (scripts/install-deps checks for it)");
    if !out.status.success() {
        return Err(text(&out));
    }
    yaml_text_documents(&String::from_utf8_lossy(&out.stdout))
}

/// A copy of the files kustomize reads (`deploy/` and `envoy/istio/`, in the same
/// places) in a new scratch folder, where a test may add or break files.
pub fn deploy_tree_copy(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("wr-deploy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for folder in ["deploy", "envoy/istio"] {
        copy_dir(&workspace_root().join(folder), &root.join(folder));
    }
    root
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The overlay's `edge-keys.yaml` (the patch an operator writes from their key ring, as
/// deploy/kustomize/README.md shows) with the key ring `keys_json`.
pub fn edge_keys_patch(keys_json: &str) -> String {
    let keys: Value = serde_json::from_str(keys_json).expect("a key ring");
    format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {{ name: wr-edge, namespace: istio-system }}\nspec:\n  pluginConfig:\n    keys: {keys}\n"
    )
}

fn tempfile(stem: &str, ext: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "wr-{stem}-{}-{}.{ext}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ))
}
