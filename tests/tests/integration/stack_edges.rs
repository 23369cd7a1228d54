//! The edge on other runtimes, end to end, in front of the local stack (real Redis
//! Cluster, origin-queue and the demo backend, as `make up` starts them): the Cloudflare
//! Worker in real workerd, the wasi:http gateway component under wasmtime with
//! wasmtime-wasi-http on a loopback port and under `jco serve` (the Fastly adapter has
//! its module, `stack_fastly`; the walks are `edge_walks`). A visitor joins, waits, is
//! admitted and reaches the backend with the edge's identity; without a pass they are
//! sent to the waiting room; a client's own identity headers never arrive; the admin API
//! is not reachable through the edge. The backend ends a session through each edge
//! (Envoy, the Worker, the gateway): the place frees at once, and the ended pass is
//! refused from then on. The autopilot follows the backend through the stack.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde_json::json;
use wr_tests::backend_log::requests_under;
use wr_tests::components::{gateway_wasm, GatewayModule};
use wr_tests::http;
use wr_tests::jco::JcoServe;
use wr_tests::processes::{free_port, wait_answering, Stack};
use wr_tests::workerd::{workerd_bin, WorkerConfig, WorkerdDir};

use crate::edge_walks::{
    demo_config_and_held, demo_stats, edge_limits_headers, session_end_walk,
    sessions_ended_by_backend, visitor_walks_through, worker_config,
};

/// The stack shared by this module's tests, one test at a time (each pauses and
/// resumes the event).
fn stack() -> (MutexGuard<'static, ()>, &'static Stack) {
    static STACK: OnceLock<Stack> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    (turn, STACK.get_or_init(Stack::up))
}

/// A workerd process serving the Worker; killed on drop.
struct Worker {
    child: Child,
    addr: SocketAddr,
    _dir: WorkerdDir,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `workerd serve` with the Worker in front of the stack, the key ring passed
/// from the environment (never written into the configuration file).
fn serve_worker(stack: &Stack) -> Worker {
    let dir = WorkerdDir::new("worker", &[]);
    let port = free_port();
    let text = |s: String| format!("{s:?}"); // a capnp string literal
    let config = dir.write_config(&WorkerConfig {
        main: "worker/worker.js",
        bindings: vec![
            format!(
                "(name = \"WR_EDGE_CONFIG\", text = {})",
                text(worker_config().to_string())
            ),
            "(name = \"WR_EDGE_KEYS\", fromEnvironment = \"WR_EDGE_KEYS\")".to_owned(),
            format!(
                "(name = \"WR_ORIGIN\", text = \"http://{}\")",
                stack.backend
            ),
            format!(
                "(name = \"WR_QUEUE_ORIGIN\", text = \"http://{}\")",
                stack.queue
            ),
            // No platform sets a client-address header here: all clients share a bucket.
            "(name = \"WR_CLIENT_ADDRESS_HEADER\", text = \"\")".to_owned(),
        ],
        services: vec!["(name = \"loopback\", network = (allow = [\"local\"]))".to_owned()],
        sockets: vec![format!(
            "(name = \"http\", address = \"127.0.0.1:{port}\", http = (), service = \"main\")"
        )],
        global_outbound: Some("loopback"),
        ..WorkerConfig::default()
    });
    let child = Command::new(workerd_bin())
        .arg("serve")
        .arg(&config)
        .env("WR_EDGE_KEYS", stack.key_ring_json())
        .current_dir(&dir.path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start workerd");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut worker = Worker {
        child,
        addr,
        _dir: dir,
    };
    wait_answering(
        &mut worker.child,
        addr,
        "/healthz",
        Duration::from_secs(30),
        "workerd",
    );
    worker
}

/// The gateway's settings in front of the stack, on every host.
fn gateway_env(stack: &Stack) -> Vec<(&'static str, String)> {
    vec![
        ("WR_EDGE_CONFIG", worker_config().to_string()),
        ("WR_EDGE_KEYS", stack.key_ring_json()),
        ("WR_ORIGIN", format!("http://{}", stack.backend)),
        ("WR_QUEUE_ORIGIN", format!("http://{}", stack.queue)),
    ]
}

/// The gateway component in front of the stack, served on a loopback port by this
/// binary's own host (stops when the returned gateway is dropped).
fn serve_gateway(stack: &Stack) -> (wr_tests::components::Gateway, SocketAddr) {
    let module = GatewayModule::load().unwrap();
    let gateway = module.start(&gateway_env(stack), None).unwrap();
    let addr = gateway.serve().unwrap();
    (gateway, addr)
}

/// The same component under `jco serve` (Node), with `extra_env` for the process.
fn serve_gateway_in_jco(stack: &Stack, extra_env: &[(&'static str, String)]) -> JcoServe {
    let mut env = gateway_env(stack);
    env.extend(extra_env.iter().cloned());
    JcoServe::start(gateway_wasm(), &env, &[], "/healthz")
}

#[test]
fn the_worker_in_workerd_puts_the_waiting_room_in_front_of_the_origin() {
    let (_turn, stack) = stack();
    let worker = serve_worker(stack);
    visitor_walks_through(stack, worker.addr, "workerd");
}

#[test]
fn the_wasi_http_gateway_component_puts_the_waiting_room_in_front_of_the_origin() {
    let (_turn, stack) = stack();
    let (_gateway, addr) = serve_gateway(stack);
    visitor_walks_through(stack, addr, "gateway");
}

#[test]
fn the_gateway_under_jco_serve_puts_the_waiting_room_in_front_of_the_origin() {
    let (_turn, stack) = stack();
    let jco = serve_gateway_in_jco(stack, &[]);
    visitor_walks_through(stack, jco.addr, "jco");
}

/// `jco serve` keeps one instance for every request: the edge's rate limits hold (for
/// that process). No peer address reaches the component, so all clients share one
/// bucket (burst 100 here): a run of requests to a protected path without a pass (each
/// answered by the edge itself, 403) meets a 429 with `Retry-After`.
#[test]
fn under_jco_serve_the_rate_limits_are_the_processs() {
    let (_turn, stack) = stack();
    let jco = serve_gateway_in_jco(stack, &[]);
    let answers: Vec<http::Response> = (0..300)
        .map_while(|_| http::get(jco.addr, "/reserve", &[]).ok())
        .collect();
    let limited = answers.iter().find(|r| r.status == 429);
    assert!(
        limited.is_some_and(|r| r.header("retry-after").is_some()),
        "no 429 in {} answers: {:?}",
        answers.len(),
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(answers.iter().all(|r| r.status == 403 || r.status == 429));
}

/// Node refuses a request whose headers exceed its limit (16 KiB by default) with its
/// own bare 431 before the edge sees it; `NODE_OPTIONS=--max-http-header-size=65536`
/// raises it, and then the edge's own limit (`max_request_header_bytes`, 32 KiB
/// here) is the one that applies.
#[test]
fn under_jco_serve_node_limits_headers_first() {
    let (_turn, stack) = stack();
    let big = "a".repeat(20 * 1024);
    let headers: &[(&str, &[u8])] = &[("x-big", big.as_bytes())];
    let jco = serve_gateway_in_jco(stack, &[]);
    let refused = http::get(jco.addr, "/static/big-headers", headers).unwrap();
    assert_eq!(refused.status, 431);
    assert_eq!(refused.error_code(), None, "Node's own 431, not the edge's");
    drop(jco);

    let raised = [("NODE_OPTIONS", "--max-http-header-size=65536".to_owned())];
    let jco = serve_gateway_in_jco(stack, &raised);
    edge_limits_headers(stack, jco.addr, "/static/big-headers");
}

/// The host rules hold on the other runtimes too: an empty `Host` is never forwarded to
/// the origin. The gateway refuses it with `400 HOST_INVALID` (it hands the core the
/// request's authority); workerd refuses it itself with a 400 before the Worker runs.
#[test]
fn an_empty_host_is_refused_on_the_other_runtimes() {
    let (_turn, stack) = stack();
    let worker = serve_worker(stack);
    let (_gateway, gateway_addr) = serve_gateway(stack);
    let raw = b"GET /static/empty-host HTTP/1.1\r\nhost:\r\nconnection: close\r\n\r\n";
    let r = http::send_raw(gateway_addr, raw).expect("gateway");
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (400, Some("HOST_INVALID"))
    );
    let r = http::send_raw(worker.addr, raw).expect("workerd");
    assert_eq!(r.status, 400, "workerd");
    let seen = requests_under(stack.backend, "/static/empty-host");
    assert!(seen.is_empty(), "{seen:?}");
}

#[test]
fn the_backend_ends_a_session_through_envoy() {
    let (_turn, stack) = stack();
    let reported = stack.envoy_stat("wasmcustom.wr_edge_session_end_reported");
    let pass = session_end_walk(stack, stack.edge, "envoy");
    assert!(stack.envoy_stat("wasmcustom.wr_edge_session_ended") >= 1);
    assert!(wr_tests::fixtures::wait_until(
        Duration::from_secs(5),
        || { stack.envoy_stat("wasmcustom.wr_edge_session_end_reported") > reported }
    ));

    // Told again, origin-queue frees nothing and counts nothing twice.
    let ended = sessions_ended_by_backend(stack);
    let body = json!({ "pass": pass }).to_string();
    let replay = http::request(
        stack.queue,
        "POST",
        "/v1/events/demo/session-end",
        &[("content-type", b"application/json")],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        (replay.status, replay.error_code().as_deref()),
        (409, Some("SESSION_NOT_ACTIVE"))
    );
    assert_eq!(sessions_ended_by_backend(stack), ended);
    let metrics = String::from_utf8_lossy(&http::get(stack.queue, "/metrics", &[]).unwrap().body)
        .into_owned();
    assert!(
        metrics.contains("wr_sessions_ended_total{event=\"demo\",cause=\"backend\"}"),
        "{metrics}"
    );
}

/// A response that says the session ended, to a request that was not admitted with a
/// pass (a path the edge leaves alone), ends nothing: the header is removed, no cookie
/// is touched, and the edge counts it as ignored. A client sending the header in its
/// request ends nothing either.
#[test]
fn a_session_end_header_without_an_admitted_pass_is_removed_and_ignored() {
    let (_turn, stack) = stack();
    let ignored = stack.envoy_stat("wasmcustom.wr_edge_session_end_ignored");
    let r = http::get(stack.edge, "/healthz/purchase", &[]).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-wr-session-end"), None);
    assert!(r
        .headers
        .iter()
        .all(|(n, _)| !n.eq_ignore_ascii_case("set-cookie")));
    assert!(wr_tests::fixtures::wait_until(
        Duration::from_secs(5),
        || { stack.envoy_stat("wasmcustom.wr_edge_session_end_ignored") > ignored }
    ));

    let pass = stack.pass("demo", "client-sent-end");
    let cookie = format!("wr_pass={pass}");
    for _ in 0..2 {
        let r = http::get(
            stack.edge,
            "/reserve?tag=client-sent-end",
            &[("cookie", cookie.as_bytes()), ("x-wr-session-end", b"1")],
        )
        .unwrap();
        assert_eq!(r.status, 200, "a header in the request ended the session");
    }
}

/// origin-queue down while the backend ends a session: the visitor gets the backend's
/// answer as usual (no error), the pass is dead at this edge all the same, and the
/// failed report is counted; the place frees at the session's timeout.
#[test]
fn a_session_ends_at_the_edge_while_origin_queue_is_down() {
    let (_turn, stack) = stack();
    let failed = stack.envoy_stat("wasmcustom.wr_edge_session_end_report_failed");
    let pass = stack.pass("demo", "ends-in-outage");
    let cookie = format!("wr_pass={pass}");
    /// Brings origin-queue back, whatever the test's outcome.
    struct Restart<'s>(&'s Stack);
    impl Drop for Restart<'_> {
        fn drop(&mut self) {
            let up = self.0.up_again();
            assert!(up.status.success(), "{up:?}");
        }
    }
    stack.kill("origin-queue");
    let _restart = Restart(stack);
    let bought = http::request(
        stack.edge,
        "POST",
        "/reserve/outage/purchase",
        &[("cookie", cookie.as_bytes())],
        b"",
    )
    .unwrap();
    assert_eq!(bought.status, 200);
    assert!(bought
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("set-cookie") && v.starts_with("wr_pass=;")));
    let again = http::get(
        stack.edge,
        "/reserve?tag=outage-again",
        &[("cookie", cookie.as_bytes())],
    )
    .unwrap();
    assert_eq!(again.error_code().as_deref(), Some("SESSION_ENDED"));
    assert!(wr_tests::fixtures::wait_until(
        Duration::from_secs(10),
        || { stack.envoy_stat("wasmcustom.wr_edge_session_end_report_failed") > failed }
    ));
}

#[test]
fn the_backend_ends_a_session_through_the_worker_in_workerd() {
    let (_turn, stack) = stack();
    let worker = serve_worker(stack);
    session_end_walk(stack, worker.addr, "workerd");
}

#[test]
fn the_backend_ends_a_session_through_the_gateway_component() {
    let (_turn, stack) = stack();
    let (_gateway, addr) = serve_gateway(stack);
    session_end_walk(stack, addr, "gateway");
}

/// The autopilot through the real stack: the demo backend is made slower than the
/// traffic Envoy sends it, origin-queue reads Envoy's own statistics of the backend
/// cluster, and the event's admission rate comes down; switched off, the configured
/// rate is back at once.
#[test]
fn the_autopilot_slows_admission_when_the_backend_slows_and_can_be_switched_off() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let (_turn, stack) = stack();
    let (original, _) = demo_config_and_held(stack);
    let mut config = original.clone();
    config["rate_per_second"] = json!(10.0);
    config["autopilot"] = json!({"target_p95_ms": 100, "min_rate": 1.0, "max_rate": 20.0});
    let put = stack.admin("PUT", "/v1/admin/events/demo", &config);
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    let stats = || demo_stats(stack);
    assert!(stats()["autopilot"].is_object(), "{}", stats());

    // The backend takes 20 requests/s; admitted visitors send it 40.
    let capacity = |n: u32| {
        let path = format!("/__demo/capacity?per_second={n}");
        let r = http::request(stack.backend, "POST", &path, &[], b"").unwrap();
        assert_eq!(r.status, 200);
    };
    capacity(20);
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..8)
        .map(|i| {
            let (stop, edge) = (stop.clone(), stack.edge);
            let cookie = format!(
                "wr_pass={}",
                stack.pass("demo", &format!("autopilot-load-{i}"))
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = http::get(
                        edge,
                        "/reserve?tag=autopilot",
                        &[("cookie", cookie.as_bytes())],
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        })
        .collect();
    let slowed = wr_tests::fixtures::wait_until(Duration::from_secs(40), || {
        let s = stats();
        s["rate_in_force"].as_f64().unwrap_or(99.0) < 10.0
            && s["autopilot"]["backend_p95_ms"].as_f64().unwrap_or(0.0) > 100.0
    });
    stop.store(true, Ordering::Relaxed);
    for thread in load {
        let _ = thread.join();
    }
    capacity(0);
    let seen = stats();
    assert!(slowed, "the rate did not come down: {seen}");
    eprintln!("autopilot: {}", seen["autopilot"]);

    config["autopilot"]["enabled"] = json!(false);
    let put = stack.admin("PUT", "/v1/admin/events/demo", &config);
    assert_eq!(put.status, 200);
    let off = stats();
    assert_eq!(off["rate_in_force"].as_f64(), Some(10.0), "{off}");
    assert!(off["autopilot"].is_null(), "{off}");
    let put = stack.admin("PUT", "/v1/admin/events/demo", &original);
    assert_eq!(put.status, 200);
}
