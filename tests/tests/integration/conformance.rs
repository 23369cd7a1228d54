//! The edge's conformance vectors (`edge-core/conformance/vectors.json`) run against
//! every build of the edge: one table, the same judge (`wr_edge_core::conformance`).
//! The native core runs them in its own unit tests; real Envoy runs the path table in
//! `filter_envoy.rs` and the decision cases here; the Fastly adapter runs both in
//! Viceroy.

use serde_json::json;
use serde_json::Value;
use wr_edge_core::conformance::{self, observed_forward, observed_reply, source_address, Case};
use wr_edge_core::metrics::Counter;
use wr_tests::components::{self, DeciderModule, GatewayModule};
use wr_tests::envoy::{bootstrap, Envoy, Topology};
use wr_tests::fixtures::{filter_wasm, js_package, now};
use wr_tests::http;
use wr_tests::proxy_wasm_host::{Clock, FilterModule, Metrics, Outcome, SharedData};
use wr_tests::upstream::Upstream;
use wr_tests::workerd::{workerd_test, WorkerConfig, WorkerdDir};

/// The clock of the runtimes whose clock the test controls.
const NOW_SECS: u64 = 1_800_000_000;

/// Runs every case through `run` (case, its index → the outcome's JSON form) and fails
/// with every difference at once.
fn conforms(runtime: &str, cases: &[Case], run: impl FnMut(usize, &Case) -> Value) {
    let wrong = conformance::failures(cases, run);
    assert!(wrong.is_empty(), "{runtime}:\n{}", wrong.join("\n"));
}

fn all_cases(now_secs: u64) -> Vec<Case> {
    let mut cases = conformance::cases(now_secs);
    cases.extend(conformance::path_cases());
    cases
}

#[test]
fn the_proxy_wasm_build_under_wasmtime_conforms() {
    let module = FilterModule::load(&filter_wasm()).unwrap();
    let config = conformance::config_at(NOW_SECS).to_string();
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
                let outcome = vm
                    .request(&pairs, Some(&source_address(i, r, case)))
                    .unwrap();
                vm.tick().unwrap();
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
            let sources: Vec<String> = (0..case.repeat)
                .map(|r| source_address(i, r, case))
                .collect();
            json!({"path": case.path, "headers": case.headers, "sources": sources})
        })
        .collect();
    json!({"now_ms": NOW_SECS * 1000, "config": conformance::config_at(NOW_SECS), "cases": cases})
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

/// The Worker's own handling (edge-js/worker/handler.js) in Node: the platform
/// limiter's refusal is the edge's 429, past it the core decides, and a broken binding
/// fails closed without being logged.
#[test]
fn the_worker_s_limiter_hook_and_configuration_errors_behave_in_node() {
    let package = js_package();
    let keys = std::env::temp_dir().join(format!("wr-worker-keys-{}.json", std::process::id()));
    std::fs::write(&keys, wr_tests::fixtures::KEYS_JSON).unwrap();
    let out = std::process::Command::new("timeout")
        .args(["60", "node"])
        .arg(package.join("test/worker-node.mjs"))
        .arg(&keys)
        .output()
        .expect("run node");
    let _ = std::fs::remove_file(&keys);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_javascript_package_in_workerd_conforms() {
    let cases = all_cases(NOW_SECS);
    let suite = js_suite(&cases).to_string();
    let dir = WorkerdDir::new("conformance", &[("suite.json", suite.as_bytes())]);
    let config = dir.write_config(&WorkerConfig {
        main: "test/workerd.js",
        json_modules: &["suite.json"],
        ..WorkerConfig::default()
    });
    let (passed, output) = workerd_test(&config);
    assert!(passed, "workerd test failed:\n{output}");
    let printed = output
        .lines()
        .find_map(|line| line.split_once("WR-OUTCOMES ").map(|(_, json)| json))
        .unwrap_or_else(|| panic!("workerd printed no outcomes:\n{output}"));
    judge_printed("workerd", &cases, printed);
}

/// The Fastly adapter inside Viceroy: its own reading of a Fastly request and its store
/// on Fastly's cache, under the same vectors (`edge-fastly/tests/viceroy.rs`, run with
/// Viceroy as cargo's runner).
#[test]
fn the_fastly_adapter_in_viceroy_conforms() {
    let output = wr_tests::viceroy::test_in_viceroy().unwrap_or_else(|out| {
        panic!("the adapter's tests failed in Viceroy:\n{out}");
    });
    // Every test of the file ran (the native unit tests print their own line).
    assert!(output.contains("test result: ok. 3 passed"), "{output}");
}

/// The decision cases through real Envoy (two workers), tokens minted for the real
/// clock, each case from its own loopback address. What reaches the recording upstreams
/// is the outcome: the headers they saw against those sent (Envoy's own additions left
/// out), or Envoy's reply; the counters are Envoy's stats. A case without a path cannot
/// be sent over HTTP/1.1 and is left to the other runtimes.
#[test]
fn the_proxy_wasm_build_in_real_envoy_conforms() {
    let backend = Upstream::start();
    let queue = Upstream::start();
    let wasm = filter_wasm();
    let config = conformance::config_at(now()).to_string();
    let topology = Topology {
        wasm: &wasm,
        filter_config: &config,
        backend: backend.addr,
        queue: queue.addr,
        trusted_hops: 0,
    };
    let envoy = Envoy::start(&bootstrap(&topology), 2).expect("envoy starts");
    let counters = |envoy: &Envoy| -> Vec<u64> {
        let stats = envoy.stats_matching("wasmcustom.wr_edge_");
        Counter::ALL
            .iter()
            .map(|c| {
                let name = format!("wasmcustom.{}", c.name());
                stats
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(0, |(_, v)| *v)
            })
            .collect()
    };
    let cases: Vec<Case> = conformance::cases(now())
        .into_iter()
        .filter(|c| c.path.is_some())
        .collect();
    conforms("real Envoy", &cases, |i, case| {
        let mut last = Value::Null;
        for r in 0..case.repeat {
            let tag = format!("{i}-{r}");
            let from = format!(
                "127.{}.{}.{}",
                10 + i / 250,
                i % 250,
                if case.rotate_source { r + 1 } else { 1 }
            );
            let mut sent = case.headers.clone();
            sent.push(("x-case".into(), tag.clone()));
            let raw: Vec<(&str, &[u8])> = sent
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes()))
                .collect();
            let before = counters(&envoy);
            let path = case.path.as_deref().unwrap();
            let response = http::get_from(from.parse().unwrap(), envoy.addr, path, &raw).unwrap();
            let after = counted_after(&envoy, &before, &counters);
            let counted: Vec<String> = Counter::ALL
                .iter()
                .zip(before.iter().zip(&after))
                .filter(|(_, (b, a))| a > b)
                .map(|(c, _)| c.name().to_owned())
                .collect();
            last = match reached(&[&backend, &queue], &tag) {
                Some(seen) => observed_at_upstream(&sent, &seen, &counted),
                None => {
                    let headers: Vec<(String, String)> = response
                        .headers
                        .iter()
                        .map(|(n, v)| (n.clone(), v.clone()))
                        .collect();
                    observed_reply(
                        response.status as u32,
                        &headers,
                        &lossy(&response.body),
                        &counted,
                    )
                }
            };
        }
        last
    });
}

/// The counters once a request's counts have reached Envoy: the filter hands them over
/// on a tick, so wait until they differ from `before` (every decision counts) and two
/// reads in a row agree; after 5 s, whatever they are.
fn counted_after(envoy: &Envoy, before: &[u64], read: &dyn Fn(&Envoy) -> Vec<u64>) -> Vec<u64> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut last = read(envoy);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = read(envoy);
        if (now == last && now.as_slice() != before) || std::time::Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// The request tagged `x-case: tag` as the first upstream that saw it saw it.
fn reached(upstreams: &[&Upstream], tag: &str) -> Option<wr_tests::upstream::Seen> {
    upstreams
        .iter()
        .flat_map(|u| u.seen())
        .find(|seen| seen.values("x-case") == [tag])
}

/// What an upstream saw of a forwarded request, as an outcome: only the headers the
/// case sent and those the edge owns count (proxies add their own: x-request-id,
/// x-forwarded-proto, host, ...).
fn observed_at_upstream(
    sent: &[(String, String)],
    seen: &wr_tests::upstream::Seen,
    counted: &[String],
) -> Value {
    let owned = ["x-wr-visitor", "x-wr-event", wr_pass::wire::WIRE_HEADER];
    let relevant = |name: &str| {
        owned.iter().any(|o| o.eq_ignore_ascii_case(name))
            || sent.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let got: Vec<(String, String)> = seen
        .headers
        .iter()
        .filter(|(n, _)| relevant(n))
        .map(|(n, v)| (n.clone(), lossy(v)))
        .collect();
    observed_forward(sent, &got, counted)
}

/// A decider decision in the outcome's JSON form.
fn decision_json(decision: &components::Decision) -> Value {
    use components::{Action, HeaderChange, Rejection};
    let action = match &decision.action {
        Action::Forward(f) => {
            let changes: Vec<Value> = f
                .changes
                .iter()
                .map(|c| match c {
                    HeaderChange::Remove(name) => json!({"op": "remove", "name": name}),
                    HeaderChange::Set((name, value)) => {
                        json!({"op": "set", "name": name, "value": value})
                    }
                })
                .collect();
            json!({"action": "forward", "changes": changes, "to_queue": f.to_queue})
        }
        Action::Reply(r) => {
            let rejection = r.rejection.map(|r| match r {
                Rejection::Missing => "missing",
                Rejection::Malformed => "malformed",
                Rejection::UnsupportedVersion => "unsupported_version",
                Rejection::UnknownKey => "unknown_key",
                Rejection::BadSignature => "bad_signature",
                Rejection::Expired => "expired",
                Rejection::NotYetValid => "not_yet_valid",
                Rejection::WrongEvent => "wrong_event",
                Rejection::LifetimeTooLong => "lifetime_too_long",
                Rejection::SessionEnded => "session_ended",
                Rejection::Revoked => "revoked",
            });
            json!({"action": "reply", "status": r.status, "headers": r.headers,
                "body": r.body, "rejection": rejection})
        }
    };
    let mut action = action;
    action["counters"] = json!(decision.counters);
    action
}

#[test]
fn the_component_of_the_wit_world_under_wasmtime_conforms() {
    let module = DeciderModule::load().unwrap();
    let config = conformance::config_at(NOW_SECS).to_string();
    conforms(
        "WIT component (decider)",
        &all_cases(NOW_SECS),
        |i, case| {
            let mut decider = module
                .start(&config, NOW_SECS * 1000)
                .unwrap()
                .unwrap_or_else(|problems| panic!("{problems:?}"));
            let mut last = Value::Null;
            for r in 0..case.repeat {
                let request = components::Request {
                    path: case.path.clone(),
                    headers: case.headers.clone(),
                    source: Some(source_address(i, r, case)),
                };
                last = decision_json(&decider.decide(&request).unwrap());
            }
            last
        },
    );
}

/// The decider's response phase: an admitted request's decision carries its session;
/// a response with the session-end header loses it, expires the pass and yields the
/// report; the same pass is then refused with `session-ended`.
#[test]
fn the_component_ends_a_session_on_the_backend_s_word() {
    let module = DeciderModule::load().unwrap();
    let config = wr_tests::fixtures::filter_config(json!({}));
    let now = wr_tests::fixtures::now();
    let mut decider = module.start(&config, now * 1000).unwrap().unwrap();
    let pass = wr_tests::fixtures::pass("concert", "ends");
    let request = components::Request {
        path: Some("/reserve/purchase".into()),
        headers: vec![("cookie".into(), format!("wr_pass={pass}"))],
        source: Some("203.0.113.9".into()),
    };
    let components::Action::Forward(forward) = decider.decide(&request).unwrap().action else {
        panic!("a valid pass was not forwarded");
    };
    let session = forward
        .session
        .expect("an admitted request carries its session");
    assert_eq!(session.pass, pass);
    let headers = [("x-wr-session-end".to_owned(), "1".to_owned())];
    let answer = decider.respond(Some(&session), &headers).unwrap();
    assert!(answer.changes.iter().any(|c| matches!(
        c,
        components::ResponseChange::Remove(name) if name == "x-wr-session-end"
    )));
    assert!(answer.changes.iter().any(|c| matches!(
        c,
        components::ResponseChange::Add((name, value)) if name == "set-cookie" && value.contains("Max-Age=0")
    )));
    let report = answer.report.expect("a report");
    assert_eq!(report.path, "/v1/events/concert/session-end");
    assert!(report.body.contains(&pass));
    assert_eq!(answer.counters, ["wr_edge_session_ended"]);
    let components::Action::Reply(reply) = decider.decide(&request).unwrap().action else {
        panic!("the ended pass was forwarded");
    };
    assert!(matches!(
        reply.rejection,
        Some(components::Rejection::SessionEnded)
    ));
    let ignored = decider.respond(None, &headers).unwrap();
    assert!(ignored.report.is_none());
    assert_eq!(ignored.counters, ["wr_edge_session_end_ignored"]);
}

#[test]
fn the_component_refuses_a_broken_configuration_with_every_problem() {
    let module = DeciderModule::load().unwrap();
    let mut config = conformance::config_at(NOW_SECS);
    config["events"][0]["id"] = json!("");
    config["client_rate_limit"]["burst"] = json!(0);
    let problems = module
        .start(&config.to_string(), NOW_SECS * 1000)
        .unwrap()
        .err()
        .expect("refused");
    assert!(problems.len() >= 2, "{problems:?}");
}

/// The wasi:http gateway component, driven in-process by wasmtime-wasi-http with a wall
/// clock fixed at the vectors' time, in front of recording upstreams. One instance per
/// case, reused for the case's repeats (a host that keeps instances; its rate-limit
/// state is the instance's). The platform's client-address header is played by the
/// test. wasi:http gives a component no metrics sink, so counters are not observed
/// here (the reply's code and the upstream's headers are).
#[test]
fn the_wasi_http_gateway_component_conforms() {
    let module = GatewayModule::load().unwrap();
    let backend = Upstream::start();
    let queue = Upstream::start();
    let env = [
        (
            "WR_EDGE_CONFIG",
            conformance::config_at(NOW_SECS).to_string(),
        ),
        ("WR_ORIGIN", format!("http://{}", backend.addr)),
        ("WR_QUEUE_ORIGIN", format!("http://{}", queue.addr)),
        ("WR_CLIENT_ADDRESS_HEADER", "x-test-client".to_owned()),
    ];
    let cases: Vec<Case> = all_cases(NOW_SECS)
        .into_iter()
        .filter(|c| {
            c.path
                .as_deref()
                .is_some_and(|p| p.parse::<hyper::Uri>().is_ok())
        })
        .map(|mut c| {
            let expect = c.expect.as_object_mut().unwrap();
            expect.remove("counters");
            expect.remove("rejection");
            c
        })
        .collect();
    assert!(cases.len() >= 70, "{}", cases.len());
    conforms("wasi:http gateway component", &cases, |i, case| {
        let gateway = module.start(&env, Some(NOW_SECS)).unwrap();
        let mut last = Value::Null;
        for r in 0..case.repeat {
            let tag = format!("{i}-{r}");
            let mut sent = case.headers.clone();
            sent.push(("x-case".into(), tag.clone()));
            sent.push(("x-test-client".into(), source_address(i, r, case)));
            let mut request =
                hyper::Request::get(case.path.as_deref().unwrap()).header("host", "shop.test");
            for (name, value) in &sent {
                request = request.header(name, value);
            }
            let request = request
                .body(http_body_util::Full::new(hyper::body::Bytes::new()))
                .unwrap();
            let response = gateway.send(request).unwrap();
            last = match reached(&[&backend, &queue], &tag) {
                Some(seen) => observed_at_upstream(&sent, &seen, &[]),
                None => observed_reply(
                    response.status as u32,
                    &response.headers,
                    &lossy(&response.body),
                    &[],
                ),
            };
        }
        last
    });
}
