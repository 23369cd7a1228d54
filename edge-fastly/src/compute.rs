//! One request on Compute, whole: read it, ask the platform limiter (if configured) and
//! the core, then answer locally or forward to the `origin` / `queue` backend; apply
//! the core's changes to the response, send it, and only then tell origin-queue about
//! a session the backend ended. The counters go to the logging endpoint as one JSON
//! line.
//!
//! Compute runs an instance per request: the core's rate-limit state and its memory of
//! ended sessions are in Fastly's cache ([`CacheStore`], per POP). Fastly's Edge Rate
//! Limiter (per POP too) may be asked first.

use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use fastly::erl::{Penaltybox, RateCounter, RateWindow, ERL};
use fastly::http::header::HeaderValue;
use fastly::log::Endpoint;
use fastly::{Request, Response};
use wr_edge_core::client::client_key;
use wr_edge_core::decision::Engine;
use wr_edge_core::metrics::Counter;
use wr_edge_core::outcome::{HeaderChange, Outcome};
use wr_edge_core::reply::{
    not_configured, origin_unreachable, too_many_requests, unavailable, LocalReply,
};
use wr_edge_core::session_end::{Report, ResponseChange, Session};

use crate::cache_store::CacheStore;
use crate::host::{self, core_headers, now_ms, ClientRequest};
use crate::settings::{RateLimiterPolicy, ORIGIN_BACKEND, QUEUE_BACKEND};

/// The Edge Rate Limiter's rate counter and penalty box (one name for both).
pub const RATE_LIMITER_NAME: &str = "wr_edge_clients";

/// Serves the client request of this instance.
pub fn serve() {
    let client = host::client_request();
    let settings = match host::settings() {
        Ok(settings) => settings,
        Err(problems) => {
            for problem in problems {
                eprintln!("wr-edge fastly configuration: {problem}");
            }
            return response(&not_configured()).send_to_client();
        }
    };
    let counters_log = settings.counters_log;
    let mut counters: Vec<Counter> = Vec::new();
    if let Some(policy) = settings.rate_limiter {
        if let Some(refusal) = platform_limit(&policy, client.client, &mut counters) {
            log_counters(counters_log.as_deref(), &counters);
            return response(&refusal).send_to_client();
        }
    }
    let engine = Engine::new(settings.config);
    if let Some(report) = handle(&engine, client, &mut counters) {
        counters.push(send_report(&report));
    }
    log_counters(counters_log.as_deref(), &counters);
}

/// Asks the Edge Rate Limiter about the client; the edge's own 429 if it is over the
/// limit (or if the limiter failed: fail closed, like the core's own limits).
fn platform_limit(
    policy: &RateLimiterPolicy,
    client: Option<IpAddr>,
    counters: &mut Vec<Counter>,
) -> Option<LocalReply> {
    let source = client.map(|ip| ip.to_string());
    let entry: String = client_key(source.as_deref().map(str::as_bytes))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let window = match policy.window_seconds {
        1 => RateWindow::OneSec,
        60 => RateWindow::SixtySecs,
        _ => RateWindow::TenSecs,
    };
    let limiter = ERL::open(
        RateCounter::open(RATE_LIMITER_NAME),
        Penaltybox::open(RATE_LIMITER_NAME),
    );
    let penalty = Duration::from_secs(u64::from(policy.penalty_minutes) * 60);
    match limiter.check_rate(&entry, 1, window, policy.requests_per_second, penalty) {
        Ok(false) => None,
        Ok(true) => {
            counters.push(Counter::RateLimitedClient);
            Some(too_many_requests(policy.penalty_minutes * 60))
        }
        Err(why) => {
            eprintln!("wr-edge fastly: the Edge Rate Limiter failed ({why}); refused");
            counters.extend([Counter::RateLimitedClient, Counter::RateLimitContention]);
            Some(too_many_requests(1))
        }
    }
}

/// Decides and answers; the session-end report to send after the response, if any.
fn handle<'e>(
    engine: &'e Engine,
    client: ClientRequest,
    counters: &mut Vec<Counter>,
) -> Option<Report<'e>> {
    let store = CacheStore;
    let headers = core_headers(client.raw_path.as_deref(), &client.request);
    let source = client.client.map(|ip| ip.to_string());
    let outcome = engine.outcome(
        &headers,
        source.as_deref().map(str::as_bytes),
        now_ms(),
        &store,
    );
    match outcome {
        Outcome::Reply {
            status,
            headers,
            body,
            counters: decided,
            ..
        } => {
            counters.extend(decided);
            response(&LocalReply {
                status,
                headers,
                body,
            })
            .send_to_client();
            None
        }
        Outcome::Forward {
            changes,
            to_queue,
            session,
            counters: decided,
        } => {
            counters.extend(decided);
            let mut request = client.request;
            if apply(&mut request, &changes).is_err() {
                response(&unavailable()).send_to_client();
                return None;
            }
            let backend = if to_queue {
                QUEUE_BACKEND
            } else {
                ORIGIN_BACKEND
            };
            match request.send(backend) {
                Ok(answer) => relay(engine, answer, session.as_ref(), &store, counters),
                Err(why) => {
                    eprintln!("wr-edge fastly: forwarding to {backend} failed: {why}");
                    response(&origin_unreachable()).send_to_client();
                    None
                }
            }
        }
    }
}

/// Applies the core's header changes to the request (a value the SDK refuses fails it).
fn apply(request: &mut Request, changes: &[HeaderChange]) -> Result<(), ()> {
    for change in changes {
        match change {
            HeaderChange::Remove { name } => {
                request.remove_header(name.as_ref());
            }
            HeaderChange::Set { name, value } => {
                let value = HeaderValue::from_str(value).map_err(|_| ())?;
                request.set_header(name.as_ref(), value);
            }
        }
    }
    Ok(())
}

/// Sends the origin's answer to the client with the core's changes (a session the
/// backend ended); the report for origin-queue, if there is one.
fn relay<'e>(
    engine: &'e Engine,
    mut answer: Response,
    session: Option<&Session>,
    store: &CacheStore,
    counters: &mut Vec<Counter>,
) -> Option<Report<'e>> {
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = answer
        .get_headers()
        .map(|(n, v)| (n.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    let outcome = engine.respond(
        session,
        pairs.iter().map(|(n, v)| (n.as_slice(), v.as_slice())),
        now_ms(),
        store,
    );
    counters.extend(outcome.counters.iter().copied());
    for change in &outcome.changes {
        match change {
            ResponseChange::Remove { name } => {
                answer.remove_header(name.as_ref());
            }
            ResponseChange::Add { name, value } => match HeaderValue::from_str(value) {
                Ok(value) => answer.append_header(name.as_ref(), value),
                Err(_) => {
                    response(&unavailable()).send_to_client();
                    return None;
                }
            },
        }
    }
    answer.send_to_client();
    outcome.report
}

/// Tells origin-queue that a session ended, after the response went out; a failure is
/// logged (the place then frees at the session's timeout). The counter it makes.
fn send_report(report: &Report) -> Counter {
    // The host is the backend's name (the backend decides where it goes); the path is
    // the core's, with a validated event id.
    let url = format!("http://{QUEUE_BACKEND}{}", report.path);
    let request = Request::post(url)
        .with_header("content-type", "application/json")
        .with_body(report.body.as_str());
    match request.send(QUEUE_BACKEND) {
        Ok(answer) if matches!(answer.get_status().as_u16(), 200 | 409) => {
            Counter::SessionEndReported
        }
        Ok(answer) => {
            let status = answer.get_status().as_u16();
            eprintln!("wr-edge fastly: a session-end report got {status}");
            Counter::SessionEndReportFailed
        }
        Err(why) => {
            eprintln!("wr-edge fastly: a session-end report failed: {why}");
            Counter::SessionEndReportFailed
        }
    }
}

/// Writes the request's counters to the logging endpoint, one JSON line:
/// `{"counters":["wr_edge_…", …]}`.
fn log_counters(endpoint: Option<&str>, counters: &[Counter]) {
    let Some(name) = endpoint else { return };
    let names: Vec<&str> = counters.iter().map(|c| c.name()).collect();
    let line = serde_json::json!({ "counters": names }).to_string();
    match Endpoint::try_from_name(name) {
        Ok(mut endpoint) => {
            if let Err(why) = writeln!(endpoint, "{line}") {
                eprintln!(
                    "wr-edge fastly: the logging endpoint {name} refused the counters: {why}"
                );
            }
        }
        Err(why) => eprintln!("wr-edge fastly: no logging endpoint {name}: {why}"),
    }
}

/// A local reply as a response.
fn response(reply: &LocalReply) -> Response {
    let mut response = Response::from_status(u16::try_from(reply.status).unwrap_or(500));
    for (name, value) in &reply.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.append_header(*name, value);
        }
    }
    response.with_body(reply.body.as_str())
}
