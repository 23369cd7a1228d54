//! What every edge must do in front of the stack, written once for every runtime's
//! module (`stack_edges`, `stack_fastly`): the edge configuration of the runtimes that
//! front an origin themselves, a visitor's walk through the edge, and the walk where the
//! backend ends a session. No tests of its own.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wr_tests::backend_log::requests_under;
use wr_tests::http;
use wr_tests::processes::Stack;

/// The edge configuration of the Worker and the gateway: the stack's event, and only origin-queue's
/// public routes as queue paths (everything else of it, the admin API included, is
/// then an ordinary path of the origin and never reaches origin-queue).
pub fn worker_config() -> Value {
    json!({
        "events": [{"id": "demo", "protected_prefixes": ["/reserve"]}],
        "queue_prefixes": ["/v1/events/", "/waiting-room/"],
        "client_rate_limit": {"requests_per_second": 50, "burst": 100},
    })
}

/// Joins while admission is paused, sees its place, is admitted once admission
/// resumes, and returns (visitor id, pass).
pub fn join_wait_and_get_admitted(stack: &Stack, edge: SocketAddr) -> (String, String) {
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
pub fn visitor_walks_through(stack: &Stack, edge: SocketAddr, tag: &str) {
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

/// The demo event's stats, from origin-queue's admin API.
pub fn demo_stats(stack: &Stack) -> Value {
    stack
        .admin("GET", "/v1/admin/events/demo/stats", &json!({}))
        .json()
}

/// The demo event's configuration and the places its sessions and grants hold now.
pub fn demo_config_and_held(stack: &Stack) -> (Value, u64) {
    let stats = demo_stats(stack);
    let held = stats["active"].as_u64().unwrap() + stats["granted"].as_u64().unwrap();
    (stats["config"].clone(), held)
}

pub fn sessions_ended_by_backend(stack: &Stack) -> u64 {
    let stats = demo_stats(stack);
    stats["sessions_ended"]["backend"]
        .as_u64()
        .expect("sessions_ended")
}

/// Joins without waiting; the ticket.
pub fn join(edge: SocketAddr) -> String {
    join_with(edge, &[])
}

/// Joins without waiting, sending `headers`; the ticket.
pub fn join_with(edge: SocketAddr, headers: &[(&str, &[u8])]) -> String {
    let joined = http::request(edge, "POST", "/v1/events/demo/join", headers, b"").unwrap();
    assert_eq!(
        joined.status,
        200,
        "{}",
        String::from_utf8_lossy(&joined.body)
    );
    joined.header("x-wr-ticket").expect("a ticket").to_owned()
}

pub fn status_of(edge: SocketAddr, ticket: &str) -> Value {
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
pub fn session_end_walk(stack: &Stack, edge: SocketAddr, tag: &str) -> String {
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

/// The edge's own header limit (`max_request_header_bytes`, 32 KiB in the stack's
/// configuration) on a host that hands it large headers whole: 20 KiB of headers reach
/// the backend at `path`; 40 KiB get the edge's 431 `HEADERS_TOO_LARGE` at `path`
/// followed by `-refused`, which the backend never sees.
pub fn edge_limits_headers(stack: &Stack, edge: SocketAddr, path: &str) {
    let big = "a".repeat(20 * 1024);
    let through = http::get(edge, path, &[("x-big", big.as_bytes())]).unwrap();
    assert_eq!(
        through.status,
        200,
        "{}",
        String::from_utf8_lossy(&through.body)
    );
    let bigger = "a".repeat(40 * 1024);
    let refused_path = format!("{path}-refused");
    let refused = http::get(edge, &refused_path, &[("x-big", bigger.as_bytes())]).unwrap();
    assert_eq!(
        (refused.status, refused.error_code().as_deref()),
        (431, Some("HEADERS_TOO_LARGE"))
    );
    assert!(requests_under(stack.backend, &refused_path).is_empty());
}
