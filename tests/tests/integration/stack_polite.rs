//! The waiting-room page degrades politely: when origin-queue answers 429 with
//! `Retry-After`, the page says so and waits that long before asking again.

use std::time::Duration;

use wr_tests::browser::Browser;
use wr_tests::http;
use wr_tests::processes::Stack;

fn status_calls(stack: &Stack, code: u16) -> u64 {
    let metrics = String::from_utf8(http::get(stack.queue, "/metrics", &[]).unwrap().body).unwrap();
    let needle = format!(
        "wr_http_requests_total{{route=\"/v1/events/{{event}}/status\",status=\"{code}\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_page_waits_retry_after_on_429() {
    // One request every 5 s per visitor, burst 2: the join and the first poll pass, then 429s.
    let stack = Stack::up_with(&[("WR_VISITOR_RATE_LIMIT", "0.2:2")]);
    let auth = format!("Bearer {}", stack.admin_token);
    let paused = http::request(
        stack.queue,
        "POST",
        "/v1/admin/events/demo/pause",
        &[("authorization", auth.as_bytes())],
        b"",
    )
    .unwrap();
    assert_eq!(paused.status, 200);
    let browser = Browser::start().expect("browser");
    browser
        .goto(&format!(
            "http://{}/waiting-room/demo?return_to=/reserve",
            stack.edge
        ))
        .unwrap();
    let message = browser
        .wait_for(
            "const m = document.getElementById('message').textContent; return m.includes('very busy') ? m : null;",
            Duration::from_secs(20),
        )
        .expect("the page tells the visitor the line is busy");
    assert!(
        message.as_str().unwrap().contains("your place is kept"),
        "{message}"
    );
    let before = status_calls(&stack, 429);
    std::thread::sleep(Duration::from_secs(10));
    let during = status_calls(&stack, 429) - before;
    // Retry-After is 5 s here: in 10 s the page may ask at most 3 times.
    assert!(
        during <= 3,
        "the page asked {during} times in 10 s while told to wait 5 s"
    );
}
