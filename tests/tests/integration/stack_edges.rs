//! The edge on other runtimes, end to end, in front of the local stack (real Redis
//! Cluster, origin-queue and the demo backend, as `make up` starts them): the Cloudflare
//! Worker in real workerd, the wasi:http gateway component under wasmtime with
//! wasmtime-wasi-http on a loopback port and under `jco serve`, and the Fastly adapter
//! in Viceroy. A visitor joins, waits, is admitted and reaches the backend
//! with the edge's identity; without a pass they are sent to the waiting room; a client's
//! own identity headers never arrive; the admin API is not reachable through the edge.
//! The backend ends a session through each edge (Envoy, the Worker, the gateway, Fastly): the
//! place frees at once, and the ended pass is refused from then on.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wr_tests::backend_log::requests_under;
use wr_tests::components::{gateway_wasm, GatewayModule};
use wr_tests::http;
use wr_tests::jco::JcoServe;
use wr_tests::otlp::{Collector, Span};
use wr_tests::processes::{free_port, Stack};
use wr_tests::viceroy::{Manifest, Viceroy};
use wr_tests::workerd::{workerd_bin, WorkerConfig, WorkerdDir};

/// The stack shared by this module's tests, one test at a time (each pauses and
/// resumes the event).
///
/// origin-queue exports traces to this module's [`collector`], only of requests whose
/// caller sent a sampled `traceparent` (`parentbased_traceidratio` at 0): the test of
/// traces sends one, the others none.
fn stack() -> (MutexGuard<'static, ()>, &'static Stack) {
    static STACK: OnceLock<Stack> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let stack = STACK.get_or_init(|| {
        let endpoint = collector().endpoint();
        Stack::up_with(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ])
    });
    (turn, stack)
}

/// The OTLP receiver origin-queue of this module's stack exports to.
fn collector() -> &'static Collector {
    static COLLECTOR: OnceLock<Collector> = OnceLock::new();
    COLLECTOR.get_or_init(Collector::start)
}

/// The edge configuration of the Worker and the gateway: the stack's event, and only origin-queue's
/// public routes as queue paths (everything else of it, the admin API included, is
/// then an ordinary path of the origin and never reaches origin-queue).
fn worker_config() -> Value {
    json!({
        "events": [{"id": "demo", "protected_prefixes": ["/reserve"]}],
        "queue_prefixes": ["/v1/events/", "/waiting-room/"],
        "client_rate_limit": {"requests_per_second": 50, "burst": 100},
    })
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
    let deadline = Instant::now() + Duration::from_secs(30);
    while http::get(addr, "/healthz", &[]).is_err() {
        assert!(worker.child.try_wait().unwrap().is_none(), "workerd exited");
        assert!(
            Instant::now() < deadline,
            "workerd did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// The Fastly adapter in Viceroy in front of the stack: the backends `origin` and
/// `queue`, the edge configuration and `extra` entries in the Config Store, the key ring
/// in the Secret Store (from the environment). `keys` overrides the key ring (JSON).
fn serve_fastly(stack: &Stack, extra: &[(&'static str, &str)], keys: Option<&str>) -> Viceroy {
    let mut config_store = vec![
        ("config", worker_config().to_string()),
        ("counters_log", "wr_edge_counters".to_owned()),
    ];
    config_store.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let manifest = Manifest {
        origin: stack.backend,
        queue: stack.queue,
        config_store,
    };
    Viceroy::serve(&manifest, keys.unwrap_or(&stack.key_ring_json()))
}

/// Joins while admission is paused, sees its place, is admitted once admission
/// resumes, and returns (visitor id, pass).
fn join_wait_and_get_admitted(stack: &Stack, edge: SocketAddr) -> (String, String) {
    assert_eq!(
        stack
            .admin("POST", "/v1/admin/events/demo/pause", &json!({}))
            .status,
        200
    );
    let joined = http::request(edge, "POST", "/v1/events/demo/join", &[], b"").unwrap();
    assert_eq!(
        joined.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&joined.body)
    );
    let body = joined.json();
    assert_eq!(body["status"], "waiting", "{body}");
    assert_eq!(body["paused"], true, "{body}");
    let visitor = body["visitor"].as_str().unwrap().to_owned();
    let ticket = joined.header("x-wr-ticket").expect("a ticket").to_owned();
    assert_eq!(
        stack
            .admin("POST", "/v1/admin/events/demo/resume", &json!({}))
            .status,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = http::get(
            edge,
            "/v1/events/demo/status",
            &[("x-wr-ticket", ticket.as_bytes())],
        )
        .unwrap();
        assert_eq!(status.status, 200);
        let body = status.json();
        if body["status"] == "admitted" {
            return (visitor, body["pass"].as_str().unwrap().to_owned());
        }
        assert!(
            Instant::now() < deadline,
            "not admitted within 30 s: {body}"
        );
        std::thread::sleep(Duration::from_millis(
            body["poll_after_ms"].as_u64().unwrap_or(500).min(500),
        ));
    }
}

/// The end-to-end walk through one edge at `edge`.
fn visitor_walks_through(stack: &Stack, edge: SocketAddr, tag: &str) {
    // Without a pass: a browser goes to the waiting room, an API client gets 403.
    let browser = http::get(
        edge,
        &format!("/reserve?tag={tag}-none"),
        &[("accept", b"text/html")],
    )
    .unwrap();
    assert_eq!(browser.status, 302);
    assert_eq!(
        browser.header("location"),
        Some(format!("/waiting-room/demo?return_to=/reserve%3Ftag%3D{tag}-none").as_str())
    );
    let api = http::get(edge, &format!("/reserve?tag={tag}-none"), &[]).unwrap();
    assert_eq!(
        (api.status, api.error_code().as_deref()),
        (403, Some("NOT_ADMITTED"))
    );
    assert!(requests_under(stack.backend, &format!("/reserve?tag={tag}-none")).is_empty());
    // The waiting-room page comes from origin-queue through the edge.
    let page = http::get(edge, "/waiting-room/demo", &[("accept", b"text/html")]).unwrap();
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<html"));

    let (visitor, pass) = join_wait_and_get_admitted(stack, edge);
    let cookie = format!("wr_pass={pass}");
    let admitted = http::get(
        edge,
        &format!("/reserve?tag={tag}-pass"),
        &[
            ("cookie", cookie.as_bytes()),
            ("x-wr-visitor", b"mallory"),
            ("x_wr_event", b"evil"),
        ],
    )
    .unwrap();
    assert_eq!(admitted.status, 200);
    let seen = requests_under(stack.backend, &format!("/reserve?tag={tag}-pass"));
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["visitor"], json!(visitor), "{seen:?}");
    assert_eq!(seen[0]["event"], json!("demo"), "{seen:?}");
    let names: Vec<&str> = seen[0]["header_names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        names.iter().filter(|n| **n == "x-wr-visitor").count(),
        1,
        "{names:?}"
    );
    assert!(!names.contains(&"x_wr_event"), "{names:?}");

    // The admin API is origin-queue's alone: through the edge it never gets there.
    let auth = format!("Bearer {}", stack.admin_token);
    let stats = http::get(
        edge,
        "/v1/admin/events/demo/stats",
        &[("authorization", auth.as_bytes())],
    )
    .unwrap();
    assert_ne!(
        stats.json()["state"],
        json!("open"),
        "the admin API answered through the edge"
    );
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

#[test]
fn the_fastly_adapter_in_viceroy_puts_the_waiting_room_in_front_of_the_origin() {
    let (_turn, stack) = stack();
    let fastly = serve_fastly(stack, &[], None);
    visitor_walks_through(stack, fastly.addr, "fastly");
    // Every request's counters, one JSON line on the logging endpoint.
    let logged = fastly.logged("wr_edge_counters");
    let counted = |name: &str| {
        logged
            .iter()
            .filter(|line| {
                serde_json::from_str::<Value>(line).is_ok_and(|v| {
                    v["counters"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c == name))
                })
            })
            .count()
    };
    assert!(counted("wr_edge_admitted") >= 1, "{logged:?}");
    assert!(counted("wr_edge_redirected") >= 1, "{logged:?}");
    assert!(counted("wr_edge_queue_forwarded") >= 2, "{logged:?}");
}

/// The shipped `edge-fastly/fastly.toml` serves as it says: its configuration and
/// stores load (a protected path without a pass is refused by the edge itself, the
/// counters logged) whatever its backends are doing.
#[test]
fn the_shipped_fastly_manifest_serves() {
    let (_turn, stack) = stack();
    let manifest = wr_tests::fixtures::workspace_root().join("edge-fastly/fastly.toml");
    let fastly = Viceroy::serve_file(&manifest, &stack.key_ring_json());
    let r = http::get(fastly.addr, "/reserve", &[]).unwrap();
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (403, Some("NOT_ADMITTED"))
    );
    assert!(wr_tests::fixtures::wait_until(
        Duration::from_secs(5),
        || {
            fastly
                .logged("wr_edge_counters")
                .iter()
                .any(|l| l.contains("wr_edge_denied"))
        }
    ));
}

/// The SDK resolves `..` (and `%2e%2e`) segments when it parses a URL; the adapter
/// judges the path as the client sent it, which the origin would get too: a path not in
/// normal form is refused, as by the Envoy filter, and reaches nobody (resolved, these
/// would have been ordinary paths of the origin, forwarded without a pass).
#[test]
fn the_fastly_adapter_judges_the_path_as_sent() {
    let (_turn, stack) = stack();
    let fastly = serve_fastly(stack, &[], None);
    for path in [
        "/reserve/../judged-a",
        "/reserve/%2e%2e/judged-b",
        "/reserve/%2E%2E/judged-c",
    ] {
        let r = http::get(fastly.addr, path, &[]).unwrap();
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (400, Some("PATH_NOT_NORMALIZED")),
            "{path}"
        );
    }
    assert!(requests_under(stack.backend, "/judged").is_empty());
    assert!(requests_under(stack.backend, "/reserve/..").is_empty());
    assert!(requests_under(stack.backend, "/reserve/%2").is_empty());
}

/// Viceroy hands the adapter large headers whole; the core's own limit
/// (`max_request_header_bytes`, 32 KiB here) is the one that applies, with its 431.
#[test]
fn in_viceroy_the_edge_limits_headers() {
    let (_turn, stack) = stack();
    let fastly = serve_fastly(stack, &[], None);
    let big = "a".repeat(20 * 1024);
    let through = http::get(
        fastly.addr,
        "/static/fastly-big",
        &[("x-big", big.as_bytes())],
    )
    .unwrap();
    assert_eq!(
        through.status,
        200,
        "{}",
        String::from_utf8_lossy(&through.body)
    );
    let bigger = "a".repeat(40 * 1024);
    let refused = http::get(
        fastly.addr,
        "/static/fastly-bigger",
        &[("x-big", bigger.as_bytes())],
    )
    .unwrap();
    assert_eq!(
        (refused.status, refused.error_code().as_deref()),
        (431, Some("HEADERS_TOO_LARGE"))
    );
    assert!(requests_under(stack.backend, "/static/fastly-bigger").is_empty());
}

/// Compute keeps nothing between requests; the adapter keeps the core's buckets in
/// Fastly's cache, which every request of the service in a POP (here: of this Viceroy)
/// shares, so the core's own limits bind: requests from one address (burst 100 here) to
/// a protected path without a pass meet a 429 with `Retry-After`.
#[test]
fn in_viceroy_the_rate_limits_are_the_cache_s() {
    let (_turn, stack) = stack();
    let fastly = serve_fastly(stack, &[], None);
    let answers: Vec<http::Response> = (0..300)
        .map_while(|_| http::get(fastly.addr, "/reserve", &[]).ok())
        .collect();
    let limited = answers.iter().position(|r| r.status == 429);
    assert!(
        limited.is_some_and(|at| answers[at].header("retry-after").is_some()),
        "no 429 in {} answers: {:?}",
        answers.len(),
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // Not before the burst is spent (a lost update can only let more through).
    assert!(limited.is_some_and(|at| at >= 100), "{limited:?}");
    assert!(answers.iter().all(|r| r.status == 403 || r.status == 429));
}

/// A service without its key ring answers 503 `EDGE_NOT_CONFIGURED` and forwards
/// nothing; so does a rate-limiter policy it cannot honour.
#[test]
fn the_fastly_adapter_without_its_settings_refuses_everything() {
    let (_turn, stack) = stack();
    for (extra, keys) in [
        (&[][..], Some("")),
        (
            &[(
                "rate_limiter",
                r#"{"requests_per_second": 5, "window_seconds": 5}"#,
            )][..],
            None,
        ),
    ] {
        let fastly = serve_fastly(stack, extra, keys);
        let r = http::get(fastly.addr, "/static/unconfigured", &[]).unwrap();
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (503, Some("EDGE_NOT_CONFIGURED"))
        );
    }
    assert!(requests_under(stack.backend, "/static/unconfigured").is_empty());
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
    let through = http::get(jco.addr, "/static/big-headers", headers).unwrap();
    assert_eq!(
        through.status,
        200,
        "{}",
        String::from_utf8_lossy(&through.body)
    );
    let bigger = "a".repeat(40 * 1024);
    let edge = http::get(
        jco.addr,
        "/static/big-headers",
        &[("x-big", bigger.as_bytes())],
    )
    .unwrap();
    assert_eq!(
        (edge.status, edge.error_code().as_deref()),
        (431, Some("HEADERS_TOO_LARGE"))
    );
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

/// The demo event's stats, from origin-queue's admin API.
fn demo_stats(stack: &Stack) -> Value {
    stack
        .admin("GET", "/v1/admin/events/demo/stats", &json!({}))
        .json()
}

/// The demo event's configuration and the places its sessions and grants hold now.
fn demo_config_and_held(stack: &Stack) -> (Value, u64) {
    let stats = demo_stats(stack);
    let held = stats["active"].as_u64().unwrap() + stats["granted"].as_u64().unwrap();
    (stats["config"].clone(), held)
}

fn sessions_ended_by_backend(stack: &Stack) -> u64 {
    let stats = demo_stats(stack);
    stats["sessions_ended"]["backend"]
        .as_u64()
        .expect("sessions_ended")
}

/// Joins without waiting; the ticket.
fn join(edge: SocketAddr) -> String {
    let joined = http::request(edge, "POST", "/v1/events/demo/join", &[], b"").unwrap();
    assert_eq!(
        joined.status,
        200,
        "{}",
        String::from_utf8_lossy(&joined.body)
    );
    joined.header("x-wr-ticket").expect("a ticket").to_owned()
}

fn status_of(edge: SocketAddr, ticket: &str) -> Value {
    let r = http::get(
        edge,
        "/v1/events/demo/status",
        &[("x-wr-ticket", ticket.as_bytes())],
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// The backend ends a session through the edge at `edge`: with one place and a second
/// visitor waiting for it, the first visitor's purchase answer carries the session-end
/// header. The visitor's answer loses the header and expires the pass; the place frees
/// and the second visitor is admitted within about a second (sessions last 600 s); the
/// ended pass is refused from then on, over many connections (every worker), and the
/// backend never sees it again. Returns the ended pass.
fn session_end_walk(stack: &Stack, edge: SocketAddr, tag: &str) -> String {
    let (original, held) = demo_config_and_held(stack);
    let mut one_place = original.clone();
    one_place["max_active"] = json!(held + 1);
    one_place["session_seconds"] = json!(600);
    let put = stack.admin("PUT", "/v1/admin/events/demo", &one_place);
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    let ended_before = sessions_ended_by_backend(stack);

    let (_, pass) = join_wait_and_get_admitted(stack, edge);
    let second = join(edge);
    // Two admission steps later the second visitor still waits: the place is taken.
    let nodes = stack.redis_nodes();
    for _ in 0..2 {
        assert!(wr_tests::redis_nodes::wait_for_admission_step(
            &nodes,
            "demo",
            Duration::from_secs(5)
        ));
    }
    assert_eq!(status_of(edge, &second)["status"], "waiting");

    let cookie = format!("wr_pass={pass}");
    let bought = http::request(
        edge,
        "POST",
        &format!("/reserve/{tag}/purchase"),
        &[("cookie", cookie.as_bytes()), ("accept", b"text/html")],
        b"",
    )
    .unwrap();
    let ended_at = Instant::now();
    assert_eq!(bought.status, 200);
    assert_eq!(
        bought.header("x-wr-session-end"),
        None,
        "the header reached the visitor"
    );
    let cleared: Vec<&str> = bought
        .headers
        .iter()
        .filter(|(n, v)| n.eq_ignore_ascii_case("set-cookie") && v.starts_with("wr_pass=;"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        cleared,
        ["wr_pass=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"]
    );

    let admitted = loop {
        let body = status_of(edge, &second);
        if body["status"] == "admitted" {
            break ended_at.elapsed();
        }
        assert!(
            ended_at.elapsed() < Duration::from_secs(10),
            "the freed place was not taken within 10 s: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("{tag}: the next visitor was admitted {admitted:?} after the purchase");
    assert!(admitted < Duration::from_secs(3), "{admitted:?}");
    assert_eq!(sessions_ended_by_backend(stack), ended_before + 1);

    // The ended pass, on fresh connections (Envoy spreads them over its workers).
    for i in 0..16 {
        let path = format!("/reserve?tag={tag}-ended-{i}");
        let r = http::get(
            edge,
            &path,
            &[("cookie", cookie.as_bytes()), ("accept", b"text/html")],
        )
        .unwrap();
        assert_eq!(r.status, 302, "{path}");
        let location = r.header("location").unwrap_or_default();
        assert!(
            location.starts_with("/waiting-room/demo?session=ended&return_to=/reserve"),
            "{location}"
        );
    }
    let api = http::get(
        edge,
        &format!("/reserve?tag={tag}-ended-api"),
        &[("cookie", cookie.as_bytes())],
    )
    .unwrap();
    assert_eq!(
        (api.status, api.error_code().as_deref()),
        (403, Some("SESSION_ENDED"))
    );
    let seen = requests_under(stack.backend, &format!("/reserve?tag={tag}-ended"));
    assert!(
        seen.is_empty(),
        "an ended pass reached the backend: {seen:?}"
    );
    let page = http::get(
        edge,
        "/waiting-room/demo?session=ended",
        &[("accept", b"text/html")],
    )
    .unwrap();
    assert!(String::from_utf8_lossy(&page.body).contains("data-session=\"ended\""));

    let put = stack.admin("PUT", "/v1/admin/events/demo", &original);
    assert_eq!(put.status, 200);
    pass
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

#[test]
fn the_backend_ends_a_session_through_the_fastly_adapter() {
    let (_turn, stack) = stack();
    let fastly = serve_fastly(stack, &[], None);
    session_end_walk(stack, fastly.addr, "fastly");
    let reported = || {
        fastly
            .logged("wr_edge_counters")
            .iter()
            .filter(|line| line.contains("wr_edge_session_end_reported"))
            .count()
    };
    // The line is written after the response (and the report) went out.
    assert!(wr_tests::fixtures::wait_until(
        Duration::from_secs(5),
        || reported() >= 1
    ));
    assert_eq!(reported(), 1);
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

/// Joins the line through `edge` with `traceparent`; the ticket.
fn traced_join(edge: SocketAddr, traceparent: &str) -> String {
    let joined = http::request(
        edge,
        "POST",
        "/v1/events/demo/join",
        &[("traceparent", traceparent.as_bytes())],
        b"",
    )
    .unwrap();
    assert_eq!(
        joined.status,
        200,
        "{}",
        String::from_utf8_lossy(&joined.body)
    );
    joined.header("x-wr-ticket").expect("a ticket").to_owned()
}

/// Leaves the line (or frees the place) of `ticket`.
fn leave(edge: SocketAddr, ticket: &str) {
    let left = http::request(
        edge,
        "POST",
        "/v1/events/demo/leave",
        &[("x-wr-ticket", ticket.as_bytes())],
        b"",
    )
    .unwrap();
    assert_eq!(left.status, 200, "{}", String::from_utf8_lossy(&left.body));
}

/// A 32-hex-digit trace id and a 16-digit parent span id, random per call.
fn trace_ids() -> (String, String) {
    use std::hash::{BuildHasher, RandomState};
    let hex: String = (0..3)
        .map(|_| format!("{:016x}", RandomState::new().hash_one(Instant::now())))
        .collect();
    (hex[..32].to_owned(), hex[32..].to_owned())
}

/// The one span of `spans` named `name` whose parent is `parent`.
fn child<'s>(spans: &'s [Span], parent: &str, name: &str) -> &'s Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == parent && s.name == name)
        .collect();
    assert_eq!(found.len(), 1, "one {name} under {parent}: {spans:#?}");
    found[0]
}

/// A join sent through Envoy with the caller's W3C `traceparent` is one trace in the
/// collector: origin-queue's server span is the child of the caller's span, the batch
/// it joined is its child, and the Lua script's call the batch's; the spans carry the
/// route, the event and the outcome, and no export carries a token.
#[test]
fn a_join_through_envoy_is_one_trace_from_the_callers_traceparent() {
    let (_turn, stack) = stack();
    let (trace_id, parent) = trace_ids();
    let traceparent = format!("00-{trace_id}-{parent}-01");
    let ticket = traced_join(stack.edge, &traceparent);
    // Nobody is left in the shared line for the other tests' admissions (the leave
    // itself is not traced: no sampled traceparent).
    leave(stack.edge, &ticket);

    let complete = wr_tests::fixtures::wait_until(Duration::from_secs(15), || {
        let spans = collector().trace(&trace_id);
        ["POST /v1/events/{event}/join", "queue.batch", "join.lua"]
            .iter()
            .all(|name| spans.iter().any(|s| s.name == *name))
    });
    let spans = collector().trace(&trace_id);
    assert!(complete, "the trace did not arrive whole: {spans:#?}");

    let server = child(&spans, &parent, "POST /v1/events/{event}/join");
    assert_eq!(server.kind, 2, "a server span");
    assert_eq!(server.service, "origin-queue");
    assert_eq!(
        server.attribute("http.route"),
        Some("/v1/events/{event}/join")
    );
    assert_eq!(server.attribute("wr.event"), Some("demo"));
    assert_eq!(server.attribute("http.response.status_code"), Some("200"));
    let outcome = server.attribute("wr.outcome").unwrap_or_default();
    assert!(["waiting", "admitted"].contains(&outcome), "{outcome}");

    let batch = child(&spans, &server.span_id, "queue.batch");
    assert_eq!(batch.attribute("wr.event"), Some("demo"));
    assert_eq!(batch.attribute("wr.batch.kind"), Some("joins"));
    let script = child(&spans, &batch.span_id, "join.lua");
    assert_eq!(script.kind, 3, "a client span");
    assert_eq!(script.attribute("db.system.name"), Some("redis"));

    let exported = collector().raw_exports().concat();
    for secret in [ticket.as_str(), stack.admin_token.as_str()] {
        assert!(!exported.contains(secret), "a secret was exported");
    }
}

/// Requests whose caller sent no sampled `traceparent` are not exported under a
/// parent-based sampler at ratio 0: the sampler of `OTEL_TRACES_SAMPLER` is honoured.
#[test]
fn requests_without_a_sampled_traceparent_are_not_exported() {
    let (_turn, stack) = stack();
    let (trace_id, parent) = trace_ids();
    let unsampled = format!("00-{trace_id}-{parent}-00");
    let first = traced_join(stack.edge, &unsampled);
    leave(stack.edge, &first);
    // A sampled request after it: once its trace has arrived, the unsampled one would
    // have too (one exporter, spans in order).
    let (marker, marker_parent) = trace_ids();
    let sampled = format!("00-{marker}-{marker_parent}-01");
    let second = traced_join(stack.edge, &sampled);
    leave(stack.edge, &second);
    assert!(wr_tests::fixtures::wait_until(
        Duration::from_secs(15),
        || { collector().trace(&marker).len() >= 3 }
    ));
    assert!(collector().trace(&trace_id).is_empty());
    assert!(
        collector()
            .spans()
            .iter()
            .all(|s| !s.parent_span_id.is_empty()),
        "a trace that no sampled caller started"
    );
}
