//! The wasi:http glue: read the request, decide with the core, answer or forward.

use crate::settings::now_ms;
use std::sync::OnceLock;

use wasi::http::outgoing_handler;
use wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    OutgoingResponse, ResponseOutparam, Scheme,
};
use wr_edge_core::decision::Engine;
use wr_edge_core::local_store::LocalStore;
use wr_edge_core::outcome::{header_pairs, HeaderChange, Outcome};
use wr_edge_core::reply::{not_configured, origin_unreachable, LocalReply};
use wr_edge_core::session_end::{Report, ResponseChange, Session};

use crate::settings::{Origin, Settings};

/// Headers a wasi:http host refuses in a field list (hop-by-hop, or set by the host).
const FORBIDDEN: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "http2-settings",
];
/// The most a blocking write may carry at once.
const CHUNK: usize = 4096;

struct Gateway;

wasi::http::proxy::export!(Gateway);

/// The validated settings, the configuration turned into the core's engine.
struct Edge {
    engine: Engine,
    origin: Origin,
    queue_origin: Origin,
    client_address_header: Option<String>,
}

thread_local! {
    static STATE: LocalStore = LocalStore::default();
}

fn edge() -> Result<&'static Edge, &'static [String]> {
    static EDGE: OnceLock<Result<Edge, Vec<String>>> = OnceLock::new();
    EDGE.get_or_init(|| {
        Settings::from_env(|name| std::env::var(name).ok()).map(|s| Edge {
            engine: Engine::new(s.config),
            origin: s.origin,
            queue_origin: s.queue_origin,
            client_address_header: s.client_address_header,
        })
    })
    .as_ref()
    .map_err(|problems| problems.as_slice())
}

impl wasi::exports::http::incoming_handler::Guest for Gateway {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let edge = match edge() {
            Ok(edge) => edge,
            Err(problems) => {
                for problem in problems {
                    eprintln!("wr-edge gateway configuration: {problem}");
                }
                return respond(out, &not_configured());
            }
        };
        let path = request.path_with_query().unwrap_or_default();
        let received = request.headers().entries();
        let mut headers = header_pairs(Some(path.clone()), received.iter().cloned());
        // The request's authority, which wasi:http keeps apart from the headers (hosts
        // strip `Host`): the core judges it as `:authority`.
        if let Some(authority) = request.authority() {
            headers.push((b":authority".to_vec(), authority.into_bytes()));
        }
        let source = edge.client_address_header.as_ref().and_then(|h| {
            received
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(h))
                .map(|(_, value)| value.clone())
        });
        let outcome = STATE.with(|state| {
            edge.engine
                .outcome(&headers, source.as_deref(), now_ms(), state)
        });
        match outcome {
            Outcome::Reply {
                status,
                headers,
                body,
                ..
            } => respond(
                out,
                &LocalReply {
                    status,
                    headers,
                    body,
                },
            ),
            Outcome::Forward {
                changes,
                to_queue,
                session,
                ..
            } => {
                let origin = if to_queue {
                    &edge.queue_origin
                } else {
                    &edge.origin
                };
                match forward(request, &path, received, &changes, origin) {
                    Ok(response) => {
                        let report = relay(out, response, edge, session.as_ref());
                        // After the response is on its way: the visitor never waits.
                        if let Some(report) = report {
                            send_report(&report, &edge.queue_origin);
                        }
                    }
                    Err(why) => {
                        eprintln!("wr-edge gateway: forwarding failed: {why}");
                        respond(out, &origin_unreachable());
                    }
                }
            }
        }
    }
}

/// Sends the request on with the core's header changes and its body.
fn forward(
    request: IncomingRequest,
    path: &str,
    received: Vec<(String, Vec<u8>)>,
    changes: &[HeaderChange],
    origin: &Origin,
) -> Result<IncomingResponse, String> {
    let mut headers: Vec<(String, Vec<u8>)> = received
        .into_iter()
        .filter(|(name, _)| allowed(name))
        .collect();
    for change in changes {
        match change {
            HeaderChange::Remove { name } => headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name)),
            HeaderChange::Set { name, value } => {
                headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                headers.push((name.to_string(), value.as_bytes().to_vec()));
            }
        }
    }
    let method = request.method();
    let outgoing = outgoing_request(&headers, &method, origin, path)?;
    let body = outgoing.body().map_err(|()| "request body".to_owned())?;
    let future = outgoing_handler::handle(outgoing, None).map_err(|e| format!("{e:?}"))?;
    if !matches!(method, Method::Get | Method::Head) {
        if let Ok(incoming) = request.consume() {
            copy_body(incoming, &body)?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|e| format!("request body: {e:?}"))?;
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => Ok(response),
        Some(Ok(Err(e))) => Err(format!("{e:?}")),
        _ => Err("no response".to_owned()),
    }
}

/// A request to `origin` with `headers`, `method` and `path` (and query).
fn outgoing_request(
    headers: &[(String, Vec<u8>)],
    method: &Method,
    origin: &Origin,
    path: &str,
) -> Result<OutgoingRequest, String> {
    let fields = Fields::from_list(headers).map_err(|e| format!("request headers: {e:?}"))?;
    let outgoing = OutgoingRequest::new(fields);
    let scheme = if origin.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    outgoing
        .set_method(method)
        .and_then(|()| outgoing.set_scheme(Some(&scheme)))
        .and_then(|()| outgoing.set_authority(Some(&origin.authority)))
        .and_then(|()| outgoing.set_path_with_query(Some(path)))
        .map_err(|()| "request line refused".to_owned())?;
    Ok(outgoing)
}

/// Copies the origin's answer to the client, with the core's changes to its headers (a
/// session the backend ended); the report for origin-queue, if there is one.
fn relay<'e>(
    out: ResponseOutparam,
    response: IncomingResponse,
    edge: &'e Edge,
    session: Option<&Session>,
) -> Option<Report<'e>> {
    let mut headers: Vec<(String, Vec<u8>)> = response
        .headers()
        .entries()
        .into_iter()
        .filter(|(name, _)| allowed(name))
        .collect();
    let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_slice()));
    let outcome = STATE.with(|state| edge.engine.respond(session, pairs, now_ms(), state));
    for change in &outcome.changes {
        match change {
            ResponseChange::Remove { name } => {
                headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name))
            }
            ResponseChange::Add { name, value } => {
                headers.push((name.to_string(), value.as_bytes().to_vec()))
            }
        }
    }
    let Ok(fields) = Fields::from_list(&headers) else {
        respond(out, &origin_unreachable());
        return None;
    };
    let outgoing = OutgoingResponse::new(fields);
    let Ok(body) = outgoing
        .set_status_code(response.status())
        .and_then(|()| outgoing.body())
    else {
        respond(out, &origin_unreachable());
        return None;
    };
    ResponseOutparam::set(out, Ok(outgoing));
    if let Ok(incoming) = response.consume() {
        if let Err(why) = copy_body(incoming, &body) {
            eprintln!("wr-edge gateway: relaying the body failed: {why}");
        }
    }
    let _ = OutgoingBody::finish(body, None);
    outcome.report
}

/// Tells origin-queue that a session ended, after the response went out; a failure is
/// logged (the pass is refused here already, and the place frees at its timeout).
fn send_report(report: &Report, queue_origin: &Origin) {
    let outcome = post(
        queue_origin,
        &report.path,
        report.body.as_bytes(),
        report.timeout_ms,
    );
    match outcome {
        Ok(200 | 409) => {}
        Ok(status) => eprintln!("wr-edge gateway: a session-end report got {status}"),
        Err(why) => eprintln!("wr-edge gateway: a session-end report failed: {why}"),
    }
}

/// A JSON `POST` to `origin`, waiting at most `timeout_ms` for the answer's head; its
/// status.
fn post(origin: &Origin, path: &str, body: &[u8], timeout_ms: u32) -> Result<u16, String> {
    let headers = [("content-type".to_owned(), b"application/json".to_vec())];
    let outgoing = outgoing_request(&headers, &Method::Post, origin, path)?;
    let options = wasi::http::types::RequestOptions::new();
    let nanos = u64::from(timeout_ms) * 1_000_000;
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let out_body = outgoing.body().map_err(|()| "request body".to_owned())?;
    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(|e| format!("{e:?}"))?;
    {
        let stream = out_body.write().map_err(|()| "request body".to_owned())?;
        stream
            .blocking_write_and_flush(body)
            .map_err(|e| format!("write: {e:?}"))?;
    }
    OutgoingBody::finish(out_body, None).map_err(|e| format!("request body: {e:?}"))?;
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => Ok(response.status()),
        Some(Ok(Err(e))) => Err(format!("{e:?}")),
        _ => Err("no response".to_owned()),
    }
}

fn copy_body(incoming: IncomingBody, body: &OutgoingBody) -> Result<(), String> {
    let input = incoming.stream().map_err(|()| "body stream".to_owned())?;
    let output = body.write().map_err(|()| "body stream".to_owned())?;
    loop {
        match input.blocking_read(CHUNK as u64) {
            Ok(bytes) => {
                for chunk in bytes.chunks(CHUNK) {
                    output
                        .blocking_write_and_flush(chunk)
                        .map_err(|e| format!("write: {e:?}"))?;
                }
            }
            Err(wasi::io::streams::StreamError::Closed) => return Ok(()),
            Err(e) => return Err(format!("read: {e:?}")),
        }
    }
}

fn allowed(name: &str) -> bool {
    !FORBIDDEN.iter().any(|f| f.eq_ignore_ascii_case(name))
}

/// Answers with a local reply.
fn respond(out: ResponseOutparam, reply: &LocalReply) {
    let headers: Vec<(String, Vec<u8>)> = reply
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone().into_bytes()))
        .collect();
    let fields = Fields::from_list(&headers).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(u16::try_from(reply.status).unwrap_or(500));
    let Ok(body) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = body.write() {
        for chunk in reply.body.as_bytes().chunks(CHUNK) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    let _ = OutgoingBody::finish(body, None);
}
