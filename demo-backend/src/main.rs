//! `demo-backend`: the local stack's stand-in reservation API.
//!
//! Listens on `WR_BACKEND_LISTEN` (127.0.0.1:8082). Every page shows which visitor the
//! edge let in; `GET /__demo/requests` lists every request received (JSON), so anyone can
//! check that nothing reached the backend without a pass. A purchase (`/reserve/purchase`)
//! ends the visitor's session: its answer carries the session-end header.
//! `WR_BACKEND_CAPACITY` (or `POST /__demo/capacity?per_second=N`) makes it a backend of
//! that many requests per second, whose response time climbs past it.

use std::sync::Arc;

use demo_backend::{Backend, Seen};

fn page(request: &Seen, all: &[Seen]) -> (u16, &'static str, String) {
    if request.path.starts_with("/__demo/requests") {
        let list: Vec<_> = all.iter().map(Seen::to_json).collect();
        return (
            200,
            "application/json",
            serde_json::Value::from(list).to_string(),
        );
    }
    let visitor = request.values("x-wr-visitor").first().cloned();
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let bought = request
        .path
        .split('?')
        .next()
        .unwrap_or_default()
        .ends_with(demo_backend::PURCHASE_SEGMENT);
    let who = match &visitor {
        Some(v) if bought => format!("<p>Thank you, visitor <code>{}</code>: your seat is booked. Your session has ended, and your place goes to the next in line.</p>", escape(v)),
        Some(v) => format!("<p>You are in. Visitor <code>{}</code>, event <code>{}</code>.</p><form method=\"post\" action=\"/reserve/purchase\"><button>Buy a seat</button></form>", escape(v), escape(&request.values("x-wr-event").join(""))),
        None => "<p>This page is open to everyone. <a href=\"/reserve\">Reserve a seat</a> (protected by the waiting room).</p>".to_owned(),
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Demo tickets</title></head>\
         <body><main><h1>Demo tickets</h1>{who}<p>Path: <code>{}</code></p></main></body></html>",
        escape(&request.path)
    );
    (200, "text/html; charset=utf-8", html)
}

fn main() {
    let listen = std::env::var("WR_BACKEND_LISTEN").unwrap_or_else(|_| "127.0.0.1:8082".into());
    let backend = match Backend::start(&listen, Arc::new(page)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("demo-backend: cannot listen on {listen}: {e}");
            std::process::exit(2);
        }
    };
    if let Some(per_second) = std::env::var("WR_BACKEND_CAPACITY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        backend.set_capacity(per_second);
    }
    eprintln!("demo-backend: listening on {}", backend.addr);
    loop {
        std::thread::park();
    }
}
