//! Redis Cluster or origin-queue down under the whole stack: visitors who already hold
//! a pass keep getting in (the edge needs no network call), the queue's routes answer
//! 503 + `Retry-After` quickly through Envoy, and everything recovers when the part
//! that failed returns.

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use wr_tests::backend_log::requests_under;
use wr_tests::http;
use wr_tests::processes::Stack;

/// The stack shared by this module's tests, one test at a time (each breaks a part).
fn stack() -> (MutexGuard<'static, ()>, &'static Stack) {
    static STACK: OnceLock<Stack> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    (turn, STACK.get_or_init(Stack::up))
}

/// origin-queue itself gone: Envoy answers its routes with its own 503, which carries
/// `Retry-After` and a JSON error in the API's shape (the shipped local reply mapping),
/// and pass holders are not affected.
#[test]
fn envoy_s_own_503s_carry_retry_after_when_origin_queue_is_gone() {
    let (_turn, stack) = stack();
    let cookie = format!("wr_pass={}", stack.pass("demo", "holder-2"));
    stack.kill("origin-queue");
    for path in ["/v1/events/demo/status", "/waiting-room/demo"] {
        let r = http::get(stack.edge, path, &[]).unwrap();
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (503, Some("UPSTREAM_UNAVAILABLE")),
            "{path}"
        );
        assert_eq!(r.header("retry-after"), Some("1"), "{path}");
    }
    let r = http::get(
        stack.edge,
        "/reserve?tag=queue-gone",
        &[("cookie", cookie.as_bytes())],
    )
    .unwrap();
    assert_eq!(
        r.status, 200,
        "a pass holder was refused while origin-queue was gone"
    );
    let again = stack.up_again();
    assert!(again.status.success(), "{again:?}");
    let r = http::request(stack.edge, "POST", "/v1/events/demo/join", &[], b"").unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn admitted_visitors_keep_going_while_redis_is_down_and_the_queue_recovers() {
    let (_turn, stack) = stack();
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
    assert_eq!(
        requests_under(stack.backend, "/reserve?tag=outage").len(),
        22
    );
}
