//! Redis Cluster down under the whole stack: visitors who already hold a pass keep
//! getting in (the edge needs no network call), the queue answers 503 + `Retry-After`
//! quickly through Envoy, and everything recovers by itself when Redis returns.

use std::time::{Duration, Instant};

use wr_tests::backend_log::requests_under;
use wr_tests::http;
use wr_tests::processes::Stack;

#[test]
fn admitted_visitors_keep_going_while_redis_is_down_and_the_queue_recovers() {
    let stack = Stack::up();
    let cookie = format!("wr_pass={}", stack.pass("demo", "holder"));
    let reserve = || {
        http::get(
            stack.edge,
            "/reserve?tag=outage",
            &[
                ("cookie", cookie.as_bytes()),
                ("accept", b"application/json"),
            ],
        )
        .unwrap()
        .status
    };
    let join = || http::request(stack.edge, "POST", "/v1/events/demo/join", &[], b"").unwrap();
    assert_eq!(reserve(), 200);
    assert_eq!(join().status, 200);

    stack.redis("stop");
    for _ in 0..20 {
        assert_eq!(
            reserve(),
            200,
            "a pass holder was refused while Redis was down"
        );
    }
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let r = join();
        slowest = slowest.max(started.elapsed());
        assert_eq!(r.status, 503, "join while Redis is down");
        assert!(r.header("retry-after").is_some(), "503 without Retry-After");
    }
    assert!(
        slowest < Duration::from_millis(1500),
        "a join took {slowest:?} while Redis was down"
    );

    stack.redis("start");
    let deadline = Instant::now() + Duration::from_secs(30);
    while join().status != 200 {
        assert!(
            Instant::now() < deadline,
            "the queue did not recover within 30 s of Redis returning"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(reserve(), 200);
    assert_eq!(requests_under(stack.backend, "/reserve").len(), 22);
}
