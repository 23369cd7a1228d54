//! The Prometheus files in `deploy/` (the scrape configuration, the rules, the Grafana
//! dashboard) read for the tests, the metric names they may use, and the real
//! Prometheus server run against the local stack.

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::fixtures::{wait_until, workspace_root};
use crate::processes::free_port;

/// The scrape configuration, relative to the workspace.
pub const CONFIG: &str = "deploy/prometheus/prometheus.yml";
/// The rules, relative to the workspace.
pub const RULES: &str = "deploy/prometheus/rules/waiting-room.rules.yml";
/// The rules' unit tests, relative to the workspace.
pub const RULE_TESTS: &str = "deploy/prometheus/tests/waiting-room.test.yml";
/// The Grafana dashboard, relative to the workspace.
pub const DASHBOARD: &str = "deploy/grafana/waiting-room.json";

/// Envoy's own series (Envoy 1.40's `/stats/prometheus`) that the rules and the
/// dashboard may use. The filter's counters (`wr_edge_*`) come from the filter's own
/// list. All but the last were seen in the local stack's Envoy (`stack_e2e` checks them
/// there); the last exists only on an Envoy that takes the filter's configuration by
/// extension config discovery (as Istio pushes it), named after the resource
/// (`wr_edge`), as `filter_envoy`'s discovery setup produces it.
pub const ENVOY_METRICS: &[&str] = &[
    "envoy_wasm_envoy_wasm_runtime_v8_active",
    "envoy_wasm_envoy_wasm_runtime_v8_created",
    "envoy_wasm_wasm_vm_count",
    "envoy_wasm_wr_edge_vm_reload_failure",
    "envoy_http_downstream_rq_xx",
    "envoy_extension_config_discovery_http_filter_wr_edge_config_fail",
];

/// Series Prometheus makes itself.
const PROMETHEUS_METRICS: &[&str] = &["up"];

/// A single-document YAML file of the workspace as JSON.
pub fn yaml(relative: &str) -> Value {
    crate::fixtures::yaml_documents(relative)
        .into_iter()
        .next()
        .unwrap_or(Value::Null)
}

/// Every rule of [`RULES`]: (its alert or record name, its expression).
pub fn rule_exprs() -> Vec<(String, String)> {
    let rules = yaml(RULES);
    let mut all = Vec::new();
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["alert"]
                .as_str()
                .or_else(|| rule["record"].as_str())
                .expect("an alert or a record")
                .to_owned();
            let expr = rule["expr"].as_str().expect("expr").to_owned();
            all.push((name, expr));
        }
    }
    all
}

/// The dashboard's JSON.
pub fn dashboard() -> Value {
    let text = fs::read_to_string(workspace_root().join(DASHBOARD)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// Every target of every panel of the dashboard: (panel title, expression as written,
/// with Grafana's variables).
pub fn dashboard_exprs() -> Vec<(String, String)> {
    let dashboard = dashboard();
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().unwrap_or("").to_owned();
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().unwrap_or("").to_owned();
            all.push((title.clone(), expr));
        }
    }
    all
}

/// A dashboard expression as Grafana would send it: `$__rate_interval` as `window`,
/// `$event` as every event.
pub fn as_sent(expr: &str, window: &str) -> String {
    expr.replace("$__rate_interval", window)
        .replace("${event}", ".*")
        .replace("$event", ".*")
}

/// The metric names an expression reads: every identifier that is not a function, a
/// keyword, a label (inside `{…}`, `by (…)`, `on (…)`, …), a string or a duration.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
    ];
    // Strings, label matchers and ranges out first.
    let mut plain = String::new();
    let mut depth_brace = 0;
    let mut depth_bracket = 0;
    let mut in_string = false;
    for c in expr.chars() {
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '[' => depth_bracket += 1,
            ']' => depth_bracket -= 1,
            _ if depth_brace > 0 || depth_bracket > 0 => {}
            _ => plain.push(c),
        }
        if matches!(c, '"' | '{' | '}' | '[' | ']') {
            plain.push(' ');
        }
    }
    let chars: Vec<char> = plain.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut after_grouping = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let rest = chars[i..].iter().find(|c| !c.is_whitespace());
            let next_word: String = chars[i..]
                .iter()
                .skip_while(|c| c.is_whitespace())
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .collect();
            // An aggregation with its grouping first: `sum by (…) (…)`.
            let aggregation = matches!(next_word.as_str(), "by" | "without");
            if KEYWORDS.contains(&word.as_str()) {
                after_grouping = matches!(
                    word.as_str(),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                );
            } else if rest == Some(&'(') || aggregation {
                after_grouping = false;
            } else {
                names.insert(word);
            }
        } else if c.is_ascii_digit() {
            // A number (1e3, 0.5): not a name.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else {
            if c == '(' && after_grouping {
                // The label list of `by (…)`, `on (…)`, …
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                after_grouping = false;
            } else if !c.is_whitespace() {
                after_grouping = false;
            }
            i += 1;
        }
    }
    names
}

/// Every series origin-queue writes: the `wr_…` names in its source (`metrics.rs` and
/// the other renderers), with the `_bucket`, `_sum` and `_count` of histograms.
pub fn origin_queue_metrics() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut files = vec![workspace_root().join("origin-queue/src")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&path).unwrap();
            // The name a `# TYPE` line declares, or the first of a `(name, …)` list.
            for (i, _) in text.match_indices("wr_") {
                let before = text[..i].chars().last().unwrap_or(' ');
                if before.is_ascii_alphanumeric() || before == '_' {
                    continue;
                }
                let name: String = text[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if name.len() > 3 && !name.ends_with('_') {
                    names.insert(name);
                }
            }
        }
    }
    let histograms: Vec<String> = names.iter().cloned().collect();
    for name in histograms {
        for suffix in ["_bucket", "_sum", "_count"] {
            names.insert(format!("{name}{suffix}"));
        }
    }
    names
}

/// Every name an expression of the rules or the dashboard may read: origin-queue's
/// series, the filter's counters, [`ENVOY_METRICS`], Prometheus' `up`, and the
/// recording rules' own names.
pub fn known_metrics() -> BTreeSet<String> {
    let mut known = origin_queue_metrics();
    known.extend(
        wr_edge_core::metrics::Counter::ALL
            .iter()
            .map(|c| c.name().to_owned()),
    );
    known.extend(ENVOY_METRICS.iter().map(|s| s.to_string()));
    known.extend(PROMETHEUS_METRICS.iter().map(|s| s.to_string()));
    let rules = yaml(RULES);
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            if let Some(record) = rule["record"].as_str() {
                known.insert(record.to_owned());
            }
        }
    }
    known
}

/// `s` percent-encoded for a query string.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The real Prometheus server (Debian's `prometheus`), scraping an origin-queue and an
/// Envoy admin every second with the repository's rules, on a free loopback port, in a
/// scratch directory; killed on drop and, as a backstop, when the test process exits.
pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    /// Its HTTP API.
    pub addr: SocketAddr,
}

impl Prometheus {
    /// Starts it scraping `origin_queue` (`/metrics`) and `envoy_admin`
    /// (`/stats/prometheus`) every second with [`RULES`] evaluated every second; waits
    /// until it is ready (60 s at most).
    pub fn start(origin_queue: SocketAddr, envoy_admin: SocketAddr) -> Prometheus {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("wr-prometheus-{}-{port}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let rules = workspace_root().join(RULES);
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n\
             \x20 - job_name: origin-queue\n    metrics_path: /metrics\n    static_configs:\n      - targets: [\"{origin_queue}\"]\n\
             \x20 - job_name: envoy\n    metrics_path: /stats/prometheus\n    static_configs:\n      - targets: [\"{envoy_admin}\"]\n",
            rules = rules.display()
        );
        let config_path = dir.join("prometheus.yml");
        fs::write(&config_path, config).unwrap();
        let log = fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus (scripts/install-deps installs Debian's package)");
        // The backstop: killed when this test process exits, however it exits.
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 0.3; done; kill -9 {pid} 2>/dev/null; rm -rf {dir}",
            me = std::process::id(),
            pid = child.id(),
            dir = dir.display()
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let prometheus = Prometheus {
            child,
            dir,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
        };
        let ready = wait_until(Duration::from_secs(60), || {
            crate::http::get(prometheus.addr, "/-/ready", &[]).is_ok_and(|r| r.status == 200)
        });
        assert!(ready, "prometheus not ready:\n{}", prometheus.log());
        prometheus
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `GET` of an API path; the JSON answer (panics if there is none).
    pub fn api(&self, path: &str) -> Value {
        let r = crate::http::get(self.addr, path, &[])
            .unwrap_or_else(|e| panic!("GET {path} from prometheus: {e}"));
        serde_json::from_slice(&r.body).unwrap_or_else(|e| {
            panic!(
                "GET {path}: {} {e}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )
        })
    }

    /// An instant query (`/api/v1/query`): the whole answer.
    pub fn query(&self, promql: &str) -> Value {
        self.api(&format!("/api/v1/query?query={}", encode(promql)))
    }

    /// The value of an instant query that returns one sample; `None` if it returns none.
    pub fn value(&self, promql: &str) -> Option<f64> {
        let answer = self.query(promql);
        let first = answer["data"]["result"].as_array()?.first()?.clone();
        first["value"][1].as_str()?.parse().ok()
    }

    /// The scratch directory (configuration, data, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_told_from_functions_labels_and_keywords() {
        let names = metric_names(
            "sum by (event, le) (rate(wr_admitted_total{event=~\"a|b\"}[5m])) / on (event) \
             max without (instance) (wr_max_active) > 0.5 and up == 1e3 or vector(0) \
             unless on () max(wr_waiting) by (event)",
        );
        let expected: BTreeSet<String> = ["wr_admitted_total", "wr_max_active", "up", "wr_waiting"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(names, expected);
    }
}
