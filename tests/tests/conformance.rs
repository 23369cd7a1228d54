//! The edge's conformance vectors (`edge-core/conformance/vectors.json`) run against
//! every build of the edge: one table, the same judge (`wr_edge_core::conformance`).
//! The native core runs them in its own unit tests; real Envoy runs the path table in
//! `filter_envoy.rs` and the decision cases here.

use serde_json::json;
use serde_json::Value;
use wr_edge_core::conformance::{
    self, class_expectation, judge, observed_forward, observed_reply, Case,
};
use wr_edge_core::metrics::Counter;
use wr_tests::fixtures::{filter_wasm, js_package};
use wr_tests::proxy_wasm_host::{Clock, FilterModule, Metrics, Outcome, SharedData};
use wr_tests::workerd::{workerd_test, WorkerdDir};

/// The clock of the runtimes whose clock the test controls.
const NOW_SECS: u64 = 1_800_000_000;

/// Every path of the table as a case of its own: no cookie, no `Accept`.
fn path_cases() -> Vec<Case> {
    conformance::paths()
        .into_iter()
        .map(|(path, class, why)| Case {
            name: format!("{path} ({why})"),
            path: Some(path),
            headers: Vec::new(),
            repeat: 1,
            rotate_source: false,
            expect: class_expectation(&class),
        })
        .collect()
}

/// The client address of a case's `repeat`-th request (each case its own client).
fn source(index: usize, repeat: u32, case: &Case) -> String {
    let r = if case.rotate_source { repeat + 1 } else { 1 };
    format!("10.{}.{}.{r}:4000", 1 + index / 250, index % 250)
}

/// Runs every case through `run` (case, its index → the outcome's JSON form) and fails
/// with every difference at once.
fn conforms(runtime: &str, cases: &[Case], mut run: impl FnMut(usize, &Case) -> Value) {
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let wrong = judge(&run(i, case), &case.expect);
        if !wrong.is_empty() {
            failures.push(format!("{}: {}", case.name, wrong.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{runtime}:\n{}", failures.join("\n"));
}

fn all_cases(now_secs: u64) -> Vec<Case> {
    let mut cases = conformance::cases(now_secs);
    cases.extend(path_cases());
    cases
}

#[test]
fn the_proxy_wasm_build_under_wasmtime_conforms() {
    let module = FilterModule::load(&filter_wasm()).unwrap();
    let config = conformance::config().to_string();
    conforms(
        "proxy-wasm under wasmtime",
        &all_cases(NOW_SECS),
        |i, case| {
            let metrics = Metrics::default();
            let mut vm = module
                .start(
                    config.as_bytes(),
                    &Clock::at_secs(NOW_SECS),
                    &SharedData::default(),
                    &metrics,
                )
                .unwrap();
            assert!(vm.configured(), "{:?}", vm.logs());
            let mut sent: Vec<(String, String)> = Vec::new();
            if let Some(path) = &case.path {
                sent.push((":path".into(), path.clone()));
            }
            sent.extend(case.headers.iter().cloned());
            let pairs: Vec<(&[u8], &[u8])> = sent
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
                .collect();
            let mut last = None;
            for r in 0..case.repeat {
                let before: Vec<i64> = Counter::ALL.iter().map(|c| metrics.get(c.name())).collect();
                let outcome = vm.request(&pairs, Some(&source(i, r, case))).unwrap();
                let counters: Vec<String> = Counter::ALL
                    .iter()
                    .zip(before)
                    .filter(|(c, was)| metrics.get(c.name()) > *was)
                    .map(|(c, _)| c.name().to_owned())
                    .collect();
                last = Some(match outcome {
                    Outcome::Forwarded(after) => {
                        let after: Vec<(String, String)> =
                            after.iter().map(|(n, v)| (lossy(n), lossy(v))).collect();
                        observed_forward(&sent, &after, &counters)
                    }
                    Outcome::Replied(reply) => {
                        observed_reply(reply.status, &reply.headers, &lossy(&reply.body), &counters)
                    }
                });
            }
            last.unwrap()
        },
    );
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The suite as the JavaScript runners take it: the configuration, the clock, and each
/// case's request with the client address of each of its repeats.
fn js_suite(cases: &[Case]) -> Value {
    let cases: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let sources: Vec<String> = (0..case.repeat).map(|r| source(i, r, case)).collect();
            json!({"path": case.path, "headers": case.headers, "sources": sources})
        })
        .collect();
    json!({"now_ms": NOW_SECS * 1000, "config": conformance::config(), "cases": cases})
}

/// Judges the outcomes a JavaScript runner printed (a JSON array, one per case).
fn judge_printed(runtime: &str, cases: &[Case], printed: &str) {
    let outcomes: Vec<Value> = serde_json::from_str(printed.trim())
        .unwrap_or_else(|e| panic!("{runtime} printed no outcomes ({e}): {printed}"));
    assert_eq!(outcomes.len(), cases.len(), "{runtime}");
    conforms(runtime, cases, |i, _| outcomes[i].clone());
}

#[test]
fn the_javascript_package_in_node_conforms() {
    let cases = all_cases(NOW_SECS);
    let package = js_package();
    let suite = std::env::temp_dir().join(format!("wr-node-suite-{}.json", std::process::id()));
    std::fs::write(&suite, js_suite(&cases).to_string()).unwrap();
    let out = std::process::Command::new("timeout")
        .args(["60", "node"])
        .arg(package.join("test/node.mjs"))
        .arg(&suite)
        .output()
        .expect("run node");
    let _ = std::fs::remove_file(&suite);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    judge_printed("node", &cases, &String::from_utf8_lossy(&out.stdout));
}

#[test]
fn the_javascript_package_in_workerd_conforms() {
    let cases = all_cases(NOW_SECS);
    let suite = js_suite(&cases).to_string();
    let dir = WorkerdDir::new("conformance", &[("suite.json", suite.as_bytes())]);
    let config = dir.write_config("test/workerd.js", &["suite.json"], "", "", "");
    let (passed, output) = workerd_test(&config);
    assert!(passed, "workerd test failed:\n{output}");
    let printed = output
        .lines()
        .find_map(|line| line.split_once("WR-OUTCOMES ").map(|(_, json)| json))
        .unwrap_or_else(|| panic!("workerd printed no outcomes:\n{output}"));
    judge_printed("workerd", &cases, printed);
}
