//! What the product relies on in the deployment files, that no schema knows: Kubernetes
//! objects checked for the fields this product relies on (probes on real routes, HPA
//! bounds and targets, matching selectors, resource requests), the Istio plugin
//! configuration run through the filter's own configuration validator, the gateway's
//! limits and reply mappers, the compose file's wiring, and the Prometheus files through
//! `promtool`. The schemas themselves are checked by the platforms' validators in
//! `deploy_schemas`.

use std::process::Command;

use serde_json::Value;
use wr_tests::fixtures::{workspace_root, yaml_documents, KEYS_JSON};
use wr_tests::prometheus;
fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn kubernetes_manifests_for_origin_queue() {
    let docs = yaml_documents("deploy/kubernetes/origin-queue.yaml");
    let deployment = find(&docs, "Deployment");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (k, v) in deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&labels[k], v, "selector does not match the pod labels");
    }
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(
        container["resources"]["requests"]["cpu"].is_string()
            && container["resources"]["requests"]["memory"].is_string(),
        "the HPA's utilization targets need resource requests"
    );
    let env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for needed in [
        "WR_KEYS_FILE",
        "WR_ADMIN_TOKEN",
        "WR_REDIS_NODES",
        "WR_LISTEN",
    ] {
        assert!(env.contains(&needed), "{needed} missing");
    }
    assert!(
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["name"] != "WR_KEYS"),
        "no inline keys"
    );

    let hpa = find(&docs, "HorizontalPodAutoscaler");
    assert_eq!(
        (
            hpa["spec"]["minReplicas"].as_u64(),
            hpa["spec"]["maxReplicas"].as_u64()
        ),
        (Some(3), Some(50))
    );
    let targets: Vec<(String, u64)> = hpa["spec"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["resource"]["name"].as_str().unwrap().to_owned(),
                m["resource"]["target"]["averageUtilization"]
                    .as_u64()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(targets, [("cpu".to_owned(), 60), ("memory".to_owned(), 70)]);
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );

    for kind in ["Service", "PodDisruptionBudget"] {
        let doc = find(&docs, kind);
        let selector = if kind == "Service" {
            &doc["spec"]["selector"]
        } else {
            &doc["spec"]["selector"]["matchLabels"]
        };
        for (k, v) in selector.as_object().unwrap() {
            assert_eq!(&labels[k], v, "{kind} selector does not match the pods");
        }
    }
}

#[test]
fn istio_wasm_plugins_carry_a_configuration_the_filter_accepts() {
    for (file, attach) in [
        ("envoy/istio/wasmplugin-gateway.yaml", "selector"),
        ("envoy/istio/wasmplugin-waypoint.yaml", "targetRefs"),
    ] {
        let docs = yaml_documents(file);
        let plugin = find(&docs, "WasmPlugin");
        assert_eq!(plugin["apiVersion"], "extensions.istio.io/v1alpha1");
        assert!(!plugin["spec"][attach].is_null(), "{file}: no {attach}");
        assert_eq!(plugin["spec"]["failStrategy"], "FAIL_CLOSE", "{file}");
        if attach == "targetRefs" {
            assert_eq!(plugin["spec"]["targetRefs"][0]["kind"], "Gateway");
        }
        // As shipped, the placeholder secret is refused…
        let shipped = plugin["spec"]["pluginConfig"].to_string();
        let problems = wr_edge_core::config::Config::from_json(shipped.as_bytes()).unwrap_err();
        assert!(problems.iter().any(|p| p.contains("keys:")), "{problems:?}");
        // …and with a real key ring the rest of the configuration is valid.
        let mut config = plugin["spec"]["pluginConfig"].clone();
        config["keys"] = serde_json::from_str(KEYS_JSON).unwrap();
        if let Err(problems) =
            wr_edge_core::config::Config::from_json(config.to_string().as_bytes())
        {
            panic!("{file}: {problems:?}");
        }
    }
}

/// The gateway's companion manifest drops header names with `_` before any filter and
/// routes only origin-queue's public part through the gateway.
#[test]
fn istio_gateway_drops_underscore_headers_and_keeps_origin_queue_internal() {
    let docs = yaml_documents("envoy/istio/gateway-hardening.yaml");
    let filter = find(&docs, "EnvoyFilter");
    let patch = &filter["spec"]["configPatches"][0];
    assert_eq!(patch["match"]["context"], "GATEWAY");
    assert_eq!(
        patch["patch"]["value"]["typed_config"]["common_http_protocol_options"]
            ["headers_with_underscores_action"],
        "DROP_HEADER"
    );
    let routes = find(&docs, "VirtualService")["spec"]["http"]
        .as_array()
        .unwrap()
        .clone();
    let public: Vec<&str> = routes[0]["match"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["uri"]["prefix"].as_str())
        .collect();
    assert_eq!(public, ["/v1/events/", "/waiting-room/"]);
    let internal = &routes[1];
    assert_eq!(internal["directResponse"]["status"], 404);
    let hidden: Vec<(String, bool)> = internal["match"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let uri = &m["uri"];
            let path = uri["prefix"].as_str().or(uri["exact"].as_str()).unwrap();
            (path.to_owned(), m["ignoreUriCase"] == true)
        })
        .collect();
    for path in ["/v1/", "/metrics", "/readyz"] {
        assert!(
            hidden.contains(&(path.to_owned(), true)),
            "{path}: {hidden:?}"
        );
    }
}

/// The Istio gateway and the local stack's Envoy take the same header limits and give
/// Envoy's own refusals the same JSON replies: the mappers are the same, field by field.
#[test]
fn istio_gateway_has_the_local_envoy_s_header_limits_and_reply_mappers() {
    let gateway = yaml_documents("envoy/istio/gateway-hardening.yaml");
    let gateway = &find(&gateway, "EnvoyFilter")["spec"]["configPatches"][0]["patch"]["value"]
        ["typed_config"];
    let local = yaml_documents("envoy/envoy.yaml");
    let local = &local[0]["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    for hcm in [gateway, local] {
        assert_eq!(hcm["max_request_headers_kb"], 60);
        assert_eq!(
            hcm["common_http_protocol_options"]["max_headers_count"],
            100
        );
    }
    let mappers = &local["local_reply_config"]["mappers"];
    assert!(
        mappers.as_array().is_some_and(|m| m.len() >= 7),
        "{mappers}"
    );
    assert_eq!(gateway["local_reply_config"], local["local_reply_config"]);
}

#[test]
fn compose_file_wires_the_same_topology() {
    let docs = yaml_documents("envoy/docker-compose.yml");
    let services = docs[0]["services"].as_object().unwrap();
    for name in [
        "redis-0",
        "redis-5",
        "redis-init",
        "origin-queue",
        "demo-backend",
        "envoy",
    ] {
        assert!(services.contains_key(name), "service {name} missing");
    }
    let oq = &services["origin-queue"];
    assert_eq!(oq["environment"]["WR_KEYS_FILE"], "/run/wr/keys.json");
    assert!(
        oq["environment"]["WR_ADMIN_TOKEN"]
            .as_str()
            .unwrap()
            .contains(":?"),
        "the admin token must be required, not defaulted"
    );
    let mounts: Vec<&str> = services["envoy"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        mounts.iter().any(|m| m.contains("envoy.compose.yaml"))
            && mounts.iter().any(|m| m.contains("edge_filter.wasm"))
    );
}

/// Runs `promtool` with `args` in the workspace; panics with its output unless it
/// succeeds.
fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("promtool (scripts/install-deps installs Debian's prometheus)");
    assert!(
        out.status.success(),
        "promtool {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn prometheus_config_passes_promtool() {
    promtool(&["check", "config", prometheus::CONFIG]);
}

#[test]
fn prometheus_rules_pass_promtool() {
    promtool(&["check", "rules", prometheus::RULES]);
}

#[test]
fn prometheus_rule_unit_tests_pass() {
    promtool(&["test", "rules", prometheus::RULE_TESTS]);
}

/// Every alert has a severity, a `for`, a summary and a description, and names its
/// runbook entry; the unit tests have, for every alert, a case where it fires and one
/// where it does not.
#[test]
fn every_alert_is_documented_and_tested_both_ways() {
    let rules = prometheus::yaml(prometheus::RULES);
    let tests = prometheus::yaml(prometheus::RULE_TESTS);
    let runbook = std::fs::read_to_string(workspace_root().join("docs/operations.md")).unwrap();
    let cases: Vec<Value> = tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().cloned().unwrap_or_default())
        .collect();
    let mut alerts = 0;
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let Some(name) = rule["alert"].as_str() else {
                continue;
            };
            alerts += 1;
            assert!(!rule["for"].is_null(), "{name}: no for");
            assert!(
                matches!(
                    rule["labels"]["severity"].as_str(),
                    Some("critical" | "warning")
                ),
                "{name}: severity"
            );
            for key in ["summary", "description"] {
                assert!(
                    rule["annotations"][key]
                        .as_str()
                        .is_some_and(|s| !s.is_empty()),
                    "{name}: no {key}"
                );
            }
            let anchor = name.to_lowercase();
            assert_eq!(
                rule["annotations"]["runbook"].as_str(),
                Some(format!("docs/operations.md#{anchor}").as_str()),
                "{name}: runbook"
            );
            assert!(
                runbook.contains(&format!("### {name}")),
                "{name} has no entry in docs/operations.md"
            );
            let of_this: Vec<&Value> = cases.iter().filter(|c| c["alertname"] == name).collect();
            assert!(
                of_this
                    .iter()
                    .any(|c| c["exp_alerts"].as_array().is_some_and(|a| !a.is_empty())),
                "{name}: no case where it fires"
            );
            assert!(
                of_this
                    .iter()
                    .any(|c| c["exp_alerts"].as_array().is_some_and(|a| a.is_empty())),
                "{name}: no case where it does not fire"
            );
        }
    }
    assert!(alerts >= 8, "only {alerts} alerts");
}

/// The dashboard parses, every panel has targets with a non-empty `expr`, and every
/// expression of the dashboard and of the rules reads only series that origin-queue,
/// the filter or Envoy really expose (a renamed series breaks this test).
#[test]
fn grafana_dashboard_and_rules_name_only_real_series() {
    let dashboard = prometheus::dashboard();
    assert_eq!(
        dashboard["__inputs"][0]["name"], "DS_PROMETHEUS",
        "the data source is an input"
    );
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables.iter().any(|v| v["name"] == "event"),
        "no event variable"
    );
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap_or("");
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "{title}: data source"
        );
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no targets");
        for target in targets {
            assert!(
                target["expr"]
                    .as_str()
                    .is_some_and(|e| !e.trim().is_empty()),
                "{title}: a target without expr"
            );
        }
    }
    let known = prometheus::known_metrics();
    // The parser sees names at all (a broken parser would pass everything).
    assert!(known.contains("wr_waiting") && known.contains("wr_edge_admitted"));
    let mut exprs = prometheus::dashboard_exprs();
    exprs.extend(prometheus::rule_exprs());
    let mut unknown = Vec::new();
    for (name, expr) in &exprs {
        let names = prometheus::metric_names(expr);
        assert!(!names.is_empty(), "{name}: no series in {expr}");
        for metric in names {
            if !known.contains(&metric) {
                unknown.push(format!("{name}: {metric}"));
            }
        }
    }
    assert!(unknown.is_empty(), "series nobody exposes: {unknown:#?}");
}
