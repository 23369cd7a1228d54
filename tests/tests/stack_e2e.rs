//! The local stack exactly as `make up` starts it: real Redis Cluster, origin-queue,
//! demo backend and Envoy with the filter. A browser walks the waiting room end to end;
//! a crowd goes through Envoy; `make down` leaves nothing running.

use std::time::Duration;

use serde_json::{json, Value};
use wr_tests::browser::Browser;
use wr_tests::fixtures::workspace_root;
use wr_tests::http;
use wr_tests::processes::{free_port, Stack};

fn backend_log(stack: &Stack) -> Vec<Value> {
    http::get(stack.backend, "/__demo/requests", &[])
        .unwrap()
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_local_stack_end_to_end() {
    let stack = Stack::up();
    let again = stack.up_again();
    assert!(
        again.status.success(),
        "a second make up must be harmless: {again:?}"
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("already running"));

    // 1. A browser: protected page → waiting room → (paused, 4 people ahead) → admitted → page.
    assert_eq!(
        stack
            .admin("POST", "/v1/admin/events/demo/pause", &json!({}))
            .status,
        200
    );
    for _ in 0..4 {
        assert_eq!(
            http::request(stack.edge, "POST", "/v1/events/demo/join", &[], b"")
                .unwrap()
                .status,
            200
        );
    }
    let browser = Browser::start().expect("browser");
    browser
        .goto(&format!("http://{}/reserve?seat=12", stack.edge))
        .unwrap();
    let position = browser
        .wait_for("const p = document.getElementById('position'); return p && p.textContent === '5' ? p.textContent : null;", Duration::from_secs(20))
        .expect("the waiting room shows position 5");
    assert_eq!(position, "5");
    assert!(browser
        .url()
        .unwrap()
        .contains("/waiting-room/demo?return_to=/reserve"));
    let eta = browser
        .eval("return document.getElementById('eta').textContent")
        .unwrap();
    // Paused, fifth in line at 2 admissions/s: the page says how long at least, as
    // nobody knows when admission resumes.
    assert_eq!(eta.as_str(), Some("at least 2 s"), "{eta}");
    let progress = browser
        .eval("return document.getElementById('progress').getAttribute('role')")
        .unwrap();
    assert_eq!(progress, "progressbar");
    let out = workspace_root().join("target/test-output");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("waiting-room.png"), browser.screenshot().unwrap()).unwrap();

    assert_eq!(
        stack
            .admin("POST", "/v1/admin/events/demo/resume", &json!({}))
            .status,
        200
    );
    browser
        .wait_for("return location.pathname === '/reserve' && document.body.innerText.includes('You are in. Visitor') ? location.href : null", Duration::from_secs(30))
        .expect("the page moves on by itself once admitted");
    let url = browser.url().unwrap();
    assert!(url.ends_with("/reserve?seat=12"), "{url}");
    std::fs::write(out.join("admitted.png"), browser.screenshot().unwrap()).unwrap();
    drop(browser);

    // 2. The backend never saw a protected request without the filter's identity headers.
    let log = backend_log(&stack);
    let protected: Vec<&Value> = log
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").starts_with("/reserve"))
        .collect();
    assert!(!protected.is_empty());
    assert!(
        protected
            .iter()
            .all(|r| r["visitor"].is_string() && r["event"] == "demo"),
        "{protected:?}"
    );

    // 3. Spoofed identity through the edge goes nowhere.
    let r = http::get(
        stack.edge,
        "/reserve?tag=spoof",
        &[
            ("x-wr-visitor", b"mallory"),
            ("accept", b"application/json"),
        ],
    )
    .unwrap();
    assert_eq!(r.status, 403);
    assert!(backend_log(&stack)
        .iter()
        .all(|r| !r["path"].as_str().unwrap_or("").contains("tag=spoof")));

    // 4. make down leaves nothing running.
    let state = stack.state_dir();
    let out = stack.down();
    assert!(out.status.success(), "{out:?}");
    for name in ["envoy", "origin-queue", "demo-backend"] {
        assert!(
            !state.join(format!("{name}.pid")).exists(),
            "{name} pid file left"
        );
    }
    assert!(
        http::get(stack.edge, "/", &[]).is_err(),
        "envoy still answers"
    );
    assert!(
        http::get(stack.queue, "/healthz", &[]).is_err(),
        "origin-queue still answers"
    );
    assert!(
        http::get(stack.backend, "/", &[]).is_err(),
        "backend still answers"
    );
}

/// A visitor who arrives before the opening, with the pre-queue open, sees the
/// pre-queue page (no place, a draw at the opening), is given a place by the draw, and
/// gets through to the backend by themselves.
#[test]
fn a_visitor_in_the_prequeue_is_drawn_a_place_and_gets_through() {
    let stack = Stack::up();
    let stats = stack.admin("GET", "/v1/admin/events/demo/stats", &json!({}));
    let mut config = stats.json()["config"].clone();
    let t = wr_tests::fixtures::now();
    config["prequeue_opens_at"] = json!(t - 1);
    config["opens_at"] = json!(t + 8);
    let r = stack.admin("PUT", "/v1/admin/events/demo", &config);
    assert_eq!(r.status, 200, "{:?}", r.json());

    let browser = Browser::start().expect("browser");
    browser
        .goto(&format!("http://{}/reserve?seat=7", stack.edge))
        .unwrap();
    let title = browser
        .wait_for(
            "const h = document.getElementById('title'); return h && h.textContent.startsWith('The line forms at') ? h.textContent : null;",
            Duration::from_secs(20),
        )
        .expect("the pre-queue page");
    let intro = browser
        .eval("return document.getElementById('intro').textContent")
        .unwrap();
    assert!(
        intro
            .as_str()
            .unwrap()
            .contains("your place will be drawn at random among everyone here by then"),
        "{title} / {intro}"
    );
    let place = browser
        .eval("return document.getElementById('position').textContent")
        .unwrap();
    assert!(place.as_str().unwrap().starts_with("drawn at"), "{place}");
    let out = workspace_root().join("target/test-output");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("prequeue.png"), browser.screenshot().unwrap()).unwrap();

    browser
        .wait_for("return location.pathname === '/reserve' && document.body.innerText.includes('You are in. Visitor') ? location.href : null", Duration::from_secs(40))
        .expect("the page moves on by itself after the draw");
    let record = http::get(stack.edge, "/v1/events/demo/draw", &[])
        .unwrap()
        .json();
    assert_eq!(
        (record["draws"].clone(), record["entrants"].clone()),
        (json!(1), json!(1)),
        "{record}"
    );
}

/// `make up` must not take another program on its ports for its own services: a port
/// set twice is refused before anything starts, and a port another program already
/// answers on fails the start with the service's name (CI once saw the demo backend
/// answer for origin-queue when two test ports collided, and every join got HTML).
#[test]
fn make_up_refuses_ports_it_cannot_own() {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    let shared = free_port().to_string();
    let refused = Stack::try_up_with(&[
        ("WR_QUEUE_PORT", shared.as_str()),
        ("WR_BACKEND_PORT", shared.as_str()),
    ])
    .err()
    .expect("two services on one port must be refused");
    assert!(
        refused.contains(&format!("port {shared} is set for two listeners")),
        "{refused}"
    );

    // Another program answering HTTP 200 on origin-queue's port.
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let held = squatter.local_addr().unwrap().port().to_string();
    std::thread::spawn(move || {
        for mut conn in squatter.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = conn.read(&mut [0u8; 1024]);
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
            );
        }
    });
    let refused = Stack::try_up_with(&[("WR_QUEUE_PORT", held.as_str())])
        .err()
        .expect("a port held by another program must fail the start");
    assert!(
        refused.contains("origin-queue exited while starting")
            || refused.contains("answered, but not as origin-queue"),
        "{refused}"
    );
    assert!(refused.contains("Address already in use") || refused.contains("another program"));
}

/// An event that asks for proof of work: the page, in headless Chromium, solves the
/// challenge in its Web Worker with a progress indicator, joins with the solution, and
/// shows the place; nothing is typed.
#[test]
fn a_browser_solves_the_proof_of_work_and_joins() {
    let stack = Stack::up();
    let t = wr_tests::fixtures::now();
    let config = json!({"rate_per_second": 1, "burst": 1, "max_active": 10, "session_seconds": 600,
        "claim_seconds": 30, "abandon_seconds": 60, "opens_at": t + 3600, "closes_at": t + 7200,
        "proof_of_work": {"difficulty": 14}});
    let r = stack.admin("PUT", "/v1/admin/events/pow-page", &config);
    assert_eq!(r.status, 200, "{:?}", r.json());
    let browser = Browser::start().expect("browser");
    browser
        .goto(&format!("http://{}/waiting-room/pow-page", stack.edge))
        .unwrap();
    let position = browser
        .wait_for(
            "const m = document.querySelector('main'); const p = document.getElementById('position'); return m.dataset.powMs && p.textContent === '1' ? p.textContent : null;",
            Duration::from_secs(60),
        )
        .expect("the page solves the challenge and joins");
    assert_eq!(position, "1");
    let shown = browser
        .eval("return [document.querySelector('main').dataset.powDifficulty, document.querySelector('main').dataset.powMs]")
        .unwrap();
    assert_eq!(shown[0], "14", "{shown}");
    let out = workspace_root().join("target/test-output");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("pow-joined.png"), browser.screenshot().unwrap()).unwrap();
    let stats = stack.admin("GET", "/v1/admin/events/pow-page/stats", &json!({}));
    assert_eq!(stats.json()["waiting"], 1, "{:?}", stats.json());
}
