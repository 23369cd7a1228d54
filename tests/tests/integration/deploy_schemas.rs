//! Every manifest the repository ships, checked by the validators the platforms
//! publish (see `wr_tests::deploy_check`): Kubernetes objects against the official
//! schemas of the oldest and the newest Kubernetes version claimed, strictly; Istio
//! objects against Istio's own schemas, unknown fields included; the compose file by
//! `docker-compose config`; the kustomize overlays rendered by `kubectl kustomize` and
//! their output checked the same way, with what no schema knows (the edge's
//! configuration through the filter's own validator, the events through origin-queue's,
//! the names that must agree across objects). Files broken on purpose fail with the
//! validator's own message.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use wr_tests::deploy_check::{
    compose_config, deploy_tree_copy, edge_keys_patch, is_istio, istio_validate,
    kubernetes_validate, kustomize, validate, KUBERNETES_VERSIONS,
};
use wr_tests::fixtures::{workspace_root, yaml_documents, KEYS_JSON};

/// The overlays the repository ships.
const OVERLAYS: [&str; 3] = ["local", "staging", "large-sale"];

/// Every YAML file under `deploy/` and `envoy/` that holds Kubernetes or Istio objects,
/// except the overlays' patches (partial objects by design: their rendered output is
/// checked instead) and kustomize's own files.
fn manifest_files() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let root = workspace_root();
    let mut files = Vec::new();
    walk(&root.join("deploy"), &mut files);
    walk(&root.join("envoy"), &mut files);
    let mut manifests: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(&root).unwrap().to_str().unwrap().to_owned())
        .filter(|p| !p.starts_with("deploy/kustomize/overlays/"))
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .filter(|p| {
            let docs = yaml_documents(p);
            !docs.is_empty()
                && docs
                    .iter()
                    .all(|d| d["apiVersion"].is_string() && d["kind"].is_string())
        })
        .collect();
    manifests.sort();
    manifests
}

#[test]
fn every_shipped_manifest_passes_its_platform_s_validator() {
    let files = manifest_files();
    // The walk finds them all (a broken walk would check nothing).
    for expected in [
        "deploy/kubernetes/origin-queue.yaml",
        "deploy/kubernetes/namespace.yaml",
        "envoy/istio/wasmplugin-gateway.yaml",
        "envoy/istio/wasmplugin-waypoint.yaml",
        "envoy/istio/gateway-hardening.yaml",
    ] {
        assert!(
            files.contains(&expected.to_owned()),
            "{expected} not found in {files:?}"
        );
    }
    let failed: Vec<String> = files
        .iter()
        .filter_map(|file| {
            validate(&yaml_documents(file))
                .err()
                .map(|e| format!("{file}:\n{e}"))
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn the_compose_file_resolves_with_docker_compose_config() {
    let file = workspace_root().join("envoy/docker-compose.yml");
    let resolved = compose_config(&file, &[("WR_ADMIN_TOKEN", "a-token-for-the-check-0123")])
        .unwrap_or_else(|e| panic!("docker-compose config: {e}"));
    assert!(resolved.contains("origin-queue:") && resolved.contains("a-token-for-the-check-0123"));
    // The admin token is required, not defaulted: without it the file does not resolve.
    let refused = compose_config(&file, &[]).unwrap_err();
    assert!(refused.contains("set WR_ADMIN_TOKEN"), "{refused}");
}

/// An overlay rendered from a scratch copy of the tree, with the edge's key ring written
/// as the README says.
fn render(overlay: &str) -> Vec<Value> {
    let root = deploy_tree_copy(overlay);
    let dir = root.join("deploy/kustomize/overlays").join(overlay);
    std::fs::write(dir.join("edge-keys.yaml"), edge_keys_patch(KEYS_JSON)).unwrap();
    let rendered = kustomize(&dir).unwrap_or_else(|e| panic!("{overlay}: {e}"));
    let _ = std::fs::remove_dir_all(&root);
    rendered
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} expected");
    found[0]
}

/// What no schema knows, for one rendered overlay.
fn check_rendered(overlay: &str, docs: &[Value]) {
    assert!(
        docs.iter().all(|d| d["kind"] != "Secret"),
        "{overlay}: a Secret is rendered (secrets are created by hand, never committed)"
    );
    // The edge's configuration is one the filter accepts.
    let plugin = one(docs, "WasmPlugin");
    let config = plugin["spec"]["pluginConfig"].to_string();
    let edge = wr_edge_core::config::Config::from_json(config.as_bytes())
        .unwrap_or_else(|problems| panic!("{overlay}: the filter refuses it: {problems:?}"));
    // The events the edge protects are the events the overlay defines, each one that
    // origin-queue's admin API accepts.
    let dir = workspace_root()
        .join("deploy/kustomize/overlays")
        .join(overlay)
        .join("events");
    let mut defined = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let id = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let event: origin_queue::store::EventConfig =
            serde_json::from_slice(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let problems = event.problems(edge.wire.max_pass_lifetime_seconds);
        assert!(problems.is_empty(), "{}: {problems:?}", path.display());
        assert!(
            edge.event(&id).is_some(),
            "{overlay}: event {id} is not protected by the edge"
        );
        defined.push(id);
    }
    assert_eq!(
        plugin["spec"]["pluginConfig"]["events"]
            .as_array()
            .unwrap()
            .len(),
        defined.len(),
        "{overlay}: the edge protects events the overlay does not define"
    );
    // The HPA owns the replica count; its bounds and the disruption budget agree.
    let deployment = one(docs, "Deployment");
    assert!(
        deployment["spec"]["replicas"].is_null(),
        "{overlay}: replicas set beside an HPA (every apply would undo its scaling)"
    );
    let hpa = one(docs, "HorizontalPodAutoscaler");
    let (min, max) = (
        hpa["spec"]["minReplicas"].as_u64().unwrap(),
        hpa["spec"]["maxReplicas"].as_u64().unwrap(),
    );
    assert!(1 <= min && min <= max, "{overlay}: HPA {min}..{max}");
    let budget = &one(docs, "PodDisruptionBudget")["spec"]["minAvailable"];
    if let Some(n) = budget.as_u64() {
        assert!(
            n < min,
            "{overlay}: minAvailable {n} with {min} pods blocks every drain"
        );
    }
    // origin-queue's namespace is the one the edge reports to and the gateway routes to.
    let namespace = deployment["metadata"]["namespace"].as_str().unwrap();
    let host = format!("origin-queue.{namespace}.svc.cluster.local");
    let session_end = &plugin["spec"]["pluginConfig"]["session_end"];
    assert_eq!(
        session_end["report_cluster"],
        format!("outbound|8081||{host}"),
        "{overlay}"
    );
    assert_eq!(
        session_end["report_authority"],
        format!("{host}:8081"),
        "{overlay}"
    );
    let routes = one(docs, "VirtualService")["spec"]["http"].to_string();
    assert!(
        routes.contains(&format!("\"host\":\"{host}\"")),
        "{overlay}: {routes}"
    );
}

#[test]
fn every_overlay_renders_and_passes_the_validators() {
    for overlay in OVERLAYS {
        let docs = render(overlay);
        if let Err(e) = validate(&docs) {
            panic!("the {overlay} overlay, rendered:\n{e}");
        }
        check_rendered(overlay, &docs);
    }
}

#[test]
fn the_large_sale_overlay_sets_what_a_large_sale_changes() {
    let docs = render("large-sale");
    let hpa = one(&docs, "HorizontalPodAutoscaler");
    assert_eq!(
        (
            hpa["spec"]["minReplicas"].as_u64(),
            hpa["spec"]["maxReplicas"].as_u64()
        ),
        (Some(12), Some(60))
    );
    let container = &one(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "ghcr.io/waiting-room/origin-queue:0.1.0"
    );
    let env = container["env"].as_array().unwrap();
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert!(var("WR_REDIS_NODES")["value"]
        .as_str()
        .unwrap()
        .starts_with("rediss://"));
    assert_eq!(
        var("WR_REDIS_PASSWORD")["valueFrom"],
        json!({"secretKeyRef": {"name": "wr-redis", "key": "password"}})
    );
    assert_eq!(
        var("WR_ADMIN_TOKEN")["valueFrom"],
        json!({"secretKeyRef": {"name": "wr-admin", "key": "token"}})
    );
    // The key ring stays a mounted Secret; no key in the environment.
    assert!(var("WR_KEYS").is_null());
    assert_eq!(var("WR_KEYS_FILE")["value"], "/run/wr/keys/keys.json");
}

#[test]
fn an_overlay_without_the_edge_s_key_ring_does_not_render() {
    let dir = workspace_root().join("deploy/kustomize/overlays/staging");
    if dir.join("edge-keys.yaml").exists() {
        return; // an operator's own key ring in this checkout: nothing to show here
    }
    let refused = kustomize(&dir).unwrap_err();
    assert!(refused.contains("edge-keys.yaml"), "{refused}");
}

/// The origin-queue manifests with `change` applied to the document of `kind`.
fn broken_kubernetes(kind: &str, change: impl Fn(&mut Value)) -> Vec<Value> {
    let mut docs = yaml_documents("deploy/kubernetes/origin-queue.yaml");
    change(docs.iter_mut().find(|d| d["kind"] == kind).unwrap());
    docs
}

#[test]
fn a_deployment_with_an_unknown_field_fails_with_the_validator_s_message() {
    let docs = broken_kubernetes("Deployment", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = json!("Always");
    });
    for version in KUBERNETES_VERSIONS {
        let e = kubernetes_validate(&docs, version).unwrap_err();
        assert!(
            e.contains("'imagePullPolcy' was unexpected"),
            "{version}: {e}"
        );
    }
}

#[test]
fn an_hpa_with_a_wrong_type_fails_with_the_validator_s_message() {
    let docs = broken_kubernetes("HorizontalPodAutoscaler", |d| {
        d["spec"]["minReplicas"] = json!("3");
    });
    let e = kubernetes_validate(&docs, KUBERNETES_VERSIONS[0]).unwrap_err();
    assert!(
        e.contains("spec.minReplicas: '3' is not of type 'integer'"),
        "{e}"
    );
}

#[test]
fn a_kind_with_no_schema_is_an_error_not_a_pass() {
    let mut docs = yaml_documents("deploy/kubernetes/namespace.yaml");
    docs[0]["kind"] = json!("Namespaec");
    let e = kubernetes_validate(&docs, KUBERNETES_VERSIONS[1]).unwrap_err();
    assert!(e.contains("Namespaec"), "{e}");
}

fn gateway_plugin() -> Vec<Value> {
    yaml_documents("envoy/istio/wasmplugin-gateway.yaml")
}

#[test]
fn a_wasm_plugin_with_a_misspelled_phase_fails_with_the_validator_s_message() {
    let mut docs = gateway_plugin();
    docs[0]["spec"]["phase"] = json!("AUTHM");
    let e = istio_validate(&docs).unwrap_err();
    assert!(
        e.contains(
            "WasmPlugin/wr-edge: data/spec/phase must be equal to one of the allowed values"
        ),
        "{e}"
    );
}

#[test]
fn a_wasm_plugin_with_an_unknown_field_fails_with_the_validator_s_message() {
    let mut docs = gateway_plugin();
    let config = docs[0]["spec"]["pluginConfig"].take();
    docs[0]["spec"]["pluginconfig"] = config;
    let e = istio_validate(&docs).unwrap_err();
    assert!(
        e.contains("WasmPlugin/wr-edge: unknown field \"spec.pluginconfig\""),
        "{e}"
    );
}

#[test]
fn a_wasm_plugin_with_a_wrong_type_fails_with_the_validator_s_message() {
    let mut docs = gateway_plugin();
    docs[0]["spec"]["priority"] = json!("high");
    let e = istio_validate(&docs).unwrap_err();
    assert!(e.contains("data/spec/priority must be integer"), "{e}");
}

#[test]
fn an_istio_kind_istio_does_not_have_is_an_error() {
    let mut docs = gateway_plugin();
    docs[0]["kind"] = json!("WasmPlugn");
    assert!(is_istio(&docs[0]));
    let e = istio_validate(&docs).unwrap_err();
    assert!(e.contains("has no schema for kind WasmPlugn"), "{e}");
}

#[test]
fn a_compose_file_with_an_unknown_option_fails_with_the_tool_s_message() {
    let text = std::fs::read_to_string(workspace_root().join("envoy/docker-compose.yml")).unwrap();
    let broken = text.replacen("    networks: [wr]\n", "    netwrks: [wr]\n", 1);
    assert_ne!(broken, text);
    let file = std::env::temp_dir().join(format!("wr-compose-{}.yml", std::process::id()));
    std::fs::write(&file, broken).unwrap();
    let e = compose_config(&file, &[("WR_ADMIN_TOKEN", "a-token-for-the-check-0123")]).unwrap_err();
    let _ = std::fs::remove_file(&file);
    assert!(
        e.contains("Unsupported config option for services.") && e.contains("'netwrks'"),
        "{e}"
    );
}
