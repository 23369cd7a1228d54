//! The local stack exactly as `make up` starts it: real Redis Cluster, origin-queue,
//! demo backend and Envoy with the filter. A browser walks the waiting room end to end;
//! a crowd goes through Envoy; `make down` leaves nothing running.

use std::time::Duration;

use serde_json::{json, Value};
use wr_tests::browser::Browser;
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
    browser.save_screenshot("waiting-room.png", false).unwrap();

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
    browser.save_screenshot("admitted.png", false).unwrap();
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
    // In the pre-queue the visitor is already entered: what happens at the opening is the
    // draw, not the line forming.
    let title = browser
        .wait_for(
            "const h = document.getElementById('title'); return h && h.textContent.startsWith('The draw for places is at') ? h.textContent : null;",
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
            .starts_with("You are entered in the draw.")
            && intro
                .as_str()
                .unwrap()
                .contains("every place in line is drawn at random among everyone entered by then"),
        "{title} / {intro}"
    );
    let state = browser
        .eval("return document.getElementById('wr-waiting-room').dataset.state")
        .unwrap();
    assert_eq!(state, "draw");
    let place = browser
        .eval("return document.getElementById('position').textContent")
        .unwrap();
    assert!(place.as_str().unwrap().starts_with("drawn at"), "{place}");
    browser.save_screenshot("prequeue.png", false).unwrap();

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
    browser.save_screenshot("pow-joined.png", false).unwrap();
    let stats = stack.admin("GET", "/v1/admin/events/pow-page/stats", &json!({}));
    assert_eq!(stats.json()["waiting"], 1, "{:?}", stats.json());
}

/// The real Prometheus (Debian's package) scrapes the local stack every second with the
/// repository's rules: the Envoy series the rules name exist in this Envoy, a short sale
/// through the edge shows up as origin-queue and edge counters, both rule groups load and
/// evaluate with health ok, and every dashboard and rule expression runs.
#[test]
fn prometheus_scrapes_the_stack_and_runs_the_rules_and_the_dashboard() {
    use wr_tests::fixtures::wait_until;
    use wr_tests::prometheus::{self, Prometheus};

    let admin_port = free_port().to_string();
    let stack = Stack::up_with(&[("WR_ADMIN_PORT", admin_port.as_str())]);
    let envoy_admin: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();

    // The names the rules and the dashboard use are this Envoy's and this origin-queue's.
    let envoy_text = String::from_utf8(
        http::get(envoy_admin, "/stats/prometheus", &[])
            .unwrap()
            .body,
    )
    .unwrap();
    let declared = |text: &str, name: &str| text.contains(&format!("# TYPE {name} "));
    for name in prometheus::ENVOY_METRICS {
        // Only an Envoy that discovers the filter's configuration has this one.
        if !name.starts_with("envoy_extension_config_discovery_") {
            assert!(declared(&envoy_text, name), "Envoy has no {name}");
        }
    }
    for counter in wr_edge_core::metrics::Counter::ALL {
        assert!(
            declared(&envoy_text, counter.name()),
            "Envoy shows no {}",
            counter.name()
        );
    }
    let queue_text =
        String::from_utf8(http::get(stack.queue, "/metrics", &[]).unwrap().body).unwrap();
    let mut exprs = prometheus::dashboard_exprs();
    exprs.extend(prometheus::rule_exprs());
    for (title, expr) in &exprs {
        for name in prometheus::metric_names(expr) {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| declared(&queue_text, b)))
                .unwrap_or(&name);
            // Only a fresh autopilot reading shows the backend's p95.
            if base.starts_with("wr_")
                && !base.starts_with("wr_edge_")
                && !base.contains(':')
                && base != "wr_autopilot_backend_p95_seconds"
            {
                assert!(
                    declared(&queue_text, base),
                    "{title}: origin-queue has no {base}"
                );
            }
        }
    }

    let prom = Prometheus::start(stack.queue, envoy_admin);

    // A short sale through the edge: join, poll until admitted, enter with the pass.
    let joined = http::request(stack.edge, "POST", "/v1/events/demo/join", &[], b"").unwrap();
    assert_eq!(joined.status, 200);
    let ticket = joined.header("x-wr-ticket").expect("a ticket").to_owned();
    let mut pass = None;
    let admitted = wait_until(Duration::from_secs(30), || {
        let r = http::get(
            stack.edge,
            "/v1/events/demo/status",
            &[("x-wr-ticket", ticket.as_bytes())],
        )
        .unwrap();
        pass = r.json()["pass"].as_str().map(str::to_owned);
        pass.is_some()
    });
    assert!(admitted, "not admitted within 30 s");
    let cookie = format!("wr_pass={}", pass.unwrap());
    let entered = http::get(stack.edge, "/reserve", &[("cookie", cookie.as_bytes())]).unwrap();
    assert_eq!(entered.status, 200);

    // Prometheus sees it.
    for (query, what) in [
        ("sum(wr_admitted_total{event=\"demo\"})", "admissions"),
        ("sum(wr_edge_admitted)", "the edge's admitted counter"),
        ("sum(wr_edge_queue_forwarded)", "the edge's queue counter"),
    ] {
        let seen = wait_until(Duration::from_secs(30), || {
            prom.value(query).is_some_and(|v| v >= 1.0)
        });
        assert!(
            seen,
            "{what} not seen: {}\n{}",
            prom.query(query),
            prom.log()
        );
    }
    assert!(
        prom.value("wr_waiting{event=\"demo\"}").is_some(),
        "no wr_waiting"
    );
    assert_eq!(
        prom.value("max(wr_event_phase{event=\"demo\",phase=\"open\"})"),
        Some(1.0)
    );
    assert_eq!(prom.value("sum(up)"), Some(2.0), "both targets up");

    // Both rule groups loaded, every rule evaluated with health ok.
    let mut last = Value::Null;
    let healthy = wait_until(Duration::from_secs(30), || {
        last = prom.api("/api/v1/rules");
        let groups = last["data"]["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let names: Vec<&str> = groups.iter().filter_map(|g| g["name"].as_str()).collect();
        names.contains(&"waiting-room-alerts")
            && names.contains(&"waiting-room-recording")
            && groups.iter().all(|g| {
                g["rules"]
                    .as_array()
                    .is_some_and(|r| r.iter().all(|r| r["health"] == "ok"))
            })
    });
    assert!(healthy, "rules not all loaded and healthy: {last}");
    let rules = last["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().len())
        .sum::<usize>();
    assert_eq!(rules, prometheus::rule_exprs().len());

    // Every expression runs (the dashboard's as Grafana sends them).
    for (title, expr) in &exprs {
        let sent = prometheus::as_sent(expr, "1m");
        let answer = prom.query(&sent);
        assert_eq!(answer["status"], "success", "{title}: {sent}: {answer}");
    }
    drop(prom);
}

/// An operator's page template, as the page e2e test uploads it: a branded header, the
/// live placeholders in a status line, and a footer.
const BRANDED_TEMPLATE: &str = r#"<!doctype html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} · Aurora Tickets</title>
<style>
  body { margin: 0; font: 16px/1.5 system-ui, sans-serif; background: #0f1b2d; color: #f4f1ea; }
  header { background: #f2b632; color: #0f1b2d; padding: 1rem 2rem; display: flex; justify-content: space-between; align-items: baseline; }
  header strong { font-size: 1.4rem; letter-spacing: .08em; }
  .status { margin: 0; padding: .6rem 2rem; background: #1c2d47; }
  .status span { font-weight: 700; color: #f2b632; }
  #wr-waiting-room { margin: 0 auto; }
  footer { padding: 1rem 2rem; opacity: .7; font-size: .9rem; text-align: center; }
</style>
</head>
<body>
<header><strong class="brand">AURORA TICKETS</strong><span class="event">{{event}}</span></header>
<p class="status">{{state}} · #{{place}} · {{wait}}</p>
{{waiting_room}}
<footer>Aurora Tickets · help@aurora.example</footer>
</body>
</html>
"#;

/// A call to the page-template admin route with a raw body.
fn put_page(stack: &Stack, event: &str, body: &[u8], token: &str) -> http::Response {
    let auth = format!("Bearer {token}");
    http::request(
        stack.queue,
        "PUT",
        &format!("/v1/admin/events/{event}/page"),
        &[
            ("authorization", auth.as_bytes()),
            ("content-type", b"text/html; charset=utf-8"),
        ],
        body,
    )
    .unwrap()
}

/// The operator uploads a branded template; a Korean visitor (Chromium in Korean) waits
/// in line on it: the page is in Korean (`<html lang="ko">`, the state's wording), the
/// template's branding is around the waiting room, and the place updates live, in the
/// block and in the template's `{{place}}`. Hostile uploads get 422, never a 5xx, and
/// `DELETE` brings the built-in page back.
#[test]
fn a_korean_visitor_waits_in_line_on_the_operator_s_template() {
    let stack = Stack::up();
    let t = wr_tests::fixtures::now();
    let config = json!({"rate_per_second": 1, "burst": 1, "max_active": 10, "session_seconds": 600,
        "claim_seconds": 6, "abandon_seconds": 30, "opens_at": t - 1, "closes_at": t + 7200});
    let r = stack.admin("PUT", "/v1/admin/events/aurora", &config);
    assert_eq!(r.status, 200, "{:?}", r.json());
    let token = stack.admin_token.clone();

    // Bad uploads: each refused with its problem, none a 5xx.
    let doc = |body: &str| format!("<!doctype html><html><body>{body}</body></html>");
    for (body, problem) in [
        (
            doc("{{waiting_room}}<script>alert(1)</script>"),
            "<script> is not allowed",
        ),
        (
            doc("{{waiting_room}}<img src=x onerror=alert(1)>"),
            "event handler",
        ),
        (
            doc("{{waiting_room}}<a href=\"jav&#x61;script:alert(1)\">x</a>"),
            "script URLs",
        ),
        (
            doc("{{waiting_room}}<a title=\"{{event}}\">x</a>"),
            "inside the tag <a>",
        ),
        (
            doc("{{waiting_room}}<iframe src=//evil.example></iframe>"),
            "<iframe>",
        ),
        (doc("{{visitor}}"), "unknown placeholder {{visitor}}"),
        (
            doc("<p>no block</p>"),
            "{{waiting_room}} must appear exactly once",
        ),
        (
            "<html><body>{{waiting_room}}</body></html>".into(),
            "<!doctype html>",
        ),
    ] {
        let r = put_page(&stack, "aurora", body.as_bytes(), &token);
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (422, Some("BAD_PAGE_TEMPLATE")),
            "{body}"
        );
        let problems = r.json()["error"]["problems"].to_string();
        assert!(problems.contains(problem), "{body}: {problems}");
    }
    let r = put_page(&stack, "aurora", b"<!doctype html>\xff", &token);
    assert_eq!(r.error_code().as_deref(), Some("BAD_PAGE_TEMPLATE"));
    let huge = doc(&format!("{{{{waiting_room}}}}{}", "x".repeat(70_000)));
    let r = put_page(&stack, "aurora", huge.as_bytes(), &token);
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (413, Some("BODY_TOO_LARGE"))
    );
    let r = put_page(
        &stack,
        "aurora",
        BRANDED_TEMPLATE.as_bytes(),
        "wrong-token-0123456789",
    );
    assert_eq!(r.status, 401);
    let r = put_page(&stack, "no-such-event", BRANDED_TEMPLATE.as_bytes(), &token);
    assert_eq!(r.error_code().as_deref(), Some("EVENT_NOT_FOUND"));

    let r = put_page(&stack, "aurora", BRANDED_TEMPLATE.as_bytes(), &token);
    assert_eq!(r.status, 200, "{:?}", r.json());
    let stored = stack.admin("GET", "/v1/admin/events/aurora/page", &json!({}));
    assert_eq!(String::from_utf8_lossy(&stored.body), BRANDED_TEMPLATE);

    // Through the edge, in Korean: headers of a page that varies by language.
    let page = http::get(
        stack.edge,
        "/waiting-room/aurora",
        &[("accept-language", b"ko-KR,ko;q=0.9,en;q=0.5")],
    )
    .unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-language"), Some("ko"));
    assert!(page
        .header("vary")
        .unwrap_or("")
        .contains("Accept-Language"));
    let csp = page
        .header("content-security-policy")
        .unwrap_or("")
        .to_owned();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert!(html.contains("<html lang=\"ko\">") && html.contains("AURORA TICKETS"));

    // Three visitors ahead, admission paused: the Korean visitor is fourth.
    assert_eq!(
        stack
            .admin("POST", "/v1/admin/events/aurora/pause", &json!({}))
            .status,
        200
    );
    let tickets: Vec<String> = (0..3)
        .map(|_| {
            let r = http::request(stack.edge, "POST", "/v1/events/aurora/join", &[], b"").unwrap();
            assert_eq!(r.status, 200);
            r.header("x-wr-ticket").unwrap().to_owned()
        })
        .collect();
    let browser = Browser::start_in_language(Some("ko-KR")).expect("browser");
    browser
        .goto(&format!("http://{}/waiting-room/aurora", stack.edge))
        .unwrap();
    browser
        .wait_for(
            "return document.getElementById('position').textContent === '4' ? true : null;",
            Duration::from_secs(20),
        )
        .expect("the page shows place 4");
    let shown = browser
        .eval(
            "const q = (s) => document.querySelector(s).textContent; return {lang: document.documentElement.lang, \
             title: q('#title'), label: q('#position-label'), message: q('#message'), eta: q('#eta'), \
             brand: q('.brand'), event: q('.event'), place: q('[data-wr=place]'), state: q('[data-wr=state]'), \
             wait: q('[data-wr=wait]'), doc_title: document.title};",
        )
        .unwrap();
    assert_eq!(shown["lang"], "ko", "{shown}");
    assert_eq!(shown["title"], "대기 중입니다", "{shown}");
    assert_eq!(shown["label"], "내 대기 순서", "{shown}");
    assert!(
        shown["message"]
            .as_str()
            .unwrap()
            .starts_with("지금은 입장이 잠시 멈춰 있습니다"),
        "{shown}"
    );
    assert!(
        shown["eta"].as_str().unwrap().starts_with("최소 "),
        "{shown}"
    );
    assert_eq!(shown["brand"], "AURORA TICKETS", "{shown}");
    assert_eq!(shown["event"], "aurora", "{shown}");
    assert_eq!(
        (shown["place"].as_str(), shown["state"].as_str()),
        (Some("4"), Some("일시 중지")),
        "{shown}"
    );
    assert_eq!(shown["wait"], shown["eta"], "{shown}");
    assert_eq!(shown["doc_title"], "대기실 · Aurora Tickets", "{shown}");
    browser
        .save_screenshot("page-ko-template-4.png", false)
        .unwrap();

    // The three ahead leave: the place moves up live, in the block and the template.
    for ticket in &tickets {
        let r = http::request(
            stack.edge,
            "POST",
            "/v1/events/aurora/leave",
            &[("x-wr-ticket", ticket.as_bytes())],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200);
    }
    browser
        .wait_for(
            "return document.getElementById('position').textContent === '1' && document.querySelector('[data-wr=place]').textContent === '1' ? true : null;",
            Duration::from_secs(20),
        )
        .expect("the place updates live");
    // The progress bar's transition done, for a still picture.
    browser
        .wait_for(
            "return document.getAnimations().length === 0 ? true : null;",
            Duration::from_secs(5),
        )
        .expect("the page settles");
    browser
        .save_screenshot("page-ko-template.png", true)
        .unwrap();
    drop(browser);

    // DELETE: the built-in page again (within the page cache's few seconds).
    let r = http::request(
        stack.queue,
        "DELETE",
        "/v1/admin/events/aurora/page",
        &[("authorization", format!("Bearer {token}").as_bytes())],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(wr_tests::fixtures::wait_until(
        Duration::from_secs(10),
        || {
            let page = http::get(stack.edge, "/waiting-room/aurora", &[]).unwrap();
            let html = String::from_utf8_lossy(&page.body).into_owned();
            page.status == 200
                && !html.contains("AURORA TICKETS")
                && html.contains("<html lang=\"en\">")
        }
    ));
    let r = stack.admin("GET", "/v1/admin/events/aurora/page", &json!({}));
    assert_eq!(r.error_code().as_deref(), Some("PAGE_TEMPLATE_NOT_FOUND"));
}
