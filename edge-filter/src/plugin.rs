//! The proxy-wasm glue: configuration, metrics, and applying each [`Decision`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as HostAction, ContextType, LogLevel, MetricType};

use wr_edge_core::config::Config;
use wr_edge_core::decision::Engine;
use wr_edge_core::metrics::{Counter, Tally};
use wr_edge_core::outcome::{HeaderChange, Outcome};
use wr_edge_core::reply::{json_error, LocalReply};

use crate::host::{self, request_headers, HostStore};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(EdgeRoot::default()));
}}

/// How often each worker hands its counts to the host. A request makes no metric call:
/// it adds to its worker's [`Tally`], and the stats lag by this much at most.
pub const COUNTER_FLUSH: Duration = Duration::from_millis(250);

/// The worker's counters: metric ids from the host (by [`Counter::index`]) and the
/// counts not yet handed over.
#[derive(Default)]
struct Counts {
    ids: RefCell<Vec<Option<u32>>>,
    tally: RefCell<Tally>,
    /// False if the host refused a tick: then every request hands its counts over.
    batched: Cell<bool>,
}

impl Counts {
    /// Counts one request's counters.
    fn add(&self, counters: &[Counter]) {
        self.tally.borrow_mut().add(counters);
        if !self.batched.get() {
            self.flush();
        }
    }

    /// Hands the counts so far to the host.
    fn flush(&self) {
        let drained = self.tally.borrow_mut().drain();
        let ids = self.ids.borrow();
        for (counter, n) in drained {
            if let Some(Some(id)) = ids.get(counter.index()) {
                let _ = proxy_wasm::hostcalls::increment_metric(*id, n as i64);
            }
        }
    }
}

/// One per worker VM: holds the validated configuration and the worker's counts.
#[derive(Default)]
struct EdgeRoot {
    engine: Option<Rc<Engine>>,
    counts: Rc<Counts>,
}

impl Context for EdgeRoot {
    fn on_done(&mut self) -> bool {
        self.counts.flush();
        true
    }
}

impl RootContext for EdgeRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let config = match Config::from_json(&bytes) {
            Ok(config) => config,
            Err(problems) => {
                for problem in &problems {
                    log::error!("wr-edge configuration: {problem}");
                }
                log::error!(
                    "wr-edge configuration rejected: {} problem(s)",
                    problems.len()
                );
                return false;
            }
        };
        log::info!(
            "wr-edge configured: {} event(s), signing key ids {:?}",
            config.events.len(),
            config.keys.key_ids().collect::<Vec<_>>()
        );
        let ids = Counter::ALL
            .iter()
            .map(|c| proxy_wasm::hostcalls::define_metric(MetricType::Counter, c.name()).ok())
            .collect();
        // Counts made under the previous configuration go out under its metric ids.
        self.counts.flush();
        *self.counts.ids.borrow_mut() = ids;
        self.engine = Some(Rc::new(Engine::new(config)));
        let ticking = proxy_wasm::hostcalls::set_tick_period(COUNTER_FLUSH);
        if let Err(status) = ticking {
            log::warn!("wr-edge: no tick from the host ({status:?}): counting per request");
        }
        self.counts.batched.set(ticking.is_ok());
        true
    }

    fn on_tick(&mut self) {
        self.counts.flush();
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(EdgeStream {
            engine: self.engine.clone(),
            counts: self.counts.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One per HTTP request.
struct EdgeStream {
    engine: Option<Rc<Engine>>,
    counts: Rc<Counts>,
}

impl Context for EdgeStream {}

impl HttpContext for EdgeStream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> HostAction {
        let Some(engine) = self.engine.as_deref() else {
            // Only reachable if the host ignored a failed configure: fail closed.
            let reply = json_error(
                503,
                "EDGE_NOT_CONFIGURED",
                "The edge filter is not configured.",
                Some(5),
                None,
            );
            return self.reply(&reply);
        };
        let headers = request_headers();
        // A property is a costly host call: read only when a per-address limit applies.
        let source = || host::property(&["source", "address"]);
        // Without a clock every pass looks expired: fail closed.
        let now_ms = host::now_ms().unwrap_or(0);
        let pairs = headers.pairs();
        let outcome = engine.outcome_with_source(pairs, &source, now_ms, &HostStore);
        match outcome {
            Outcome::Reply {
                status,
                headers,
                body,
                counters,
                ..
            } => {
                self.count(&counters);
                self.reply(&LocalReply {
                    status,
                    headers,
                    body,
                })
            }
            Outcome::Forward {
                changes, counters, ..
            } => {
                self.count(&counters);
                for change in &changes {
                    let done = match change {
                        HeaderChange::Set { name, value } => {
                            host::replace_request_header(name.as_bytes(), value.as_bytes())
                        }
                        HeaderChange::Remove { name } => {
                            host::remove_request_header(name.as_bytes())
                        }
                    };
                    if let Err(status) = done {
                        // A request that may still carry a spoofed identity must not
                        // go on.
                        log::error!("wr-edge: the host refused a header change ({status})");
                        return self.reply(&unavailable());
                    }
                }
                HostAction::Continue
            }
        }
    }
}

/// The answer when the filter cannot do its job: fail closed.
fn unavailable() -> LocalReply {
    json_error(
        503,
        "EDGE_UNAVAILABLE",
        "The edge filter could not process the request.",
        Some(5),
        None,
    )
}

impl EdgeStream {
    fn count(&self, counters: &[Counter]) {
        self.counts.add(counters);
    }

    fn reply(&self, reply: &LocalReply) -> HostAction {
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        if let Err(status) =
            host::send_local_response(reply.status, &headers, reply.body.as_bytes())
        {
            log::error!("wr-edge: the host refused a local reply ({status})");
        }
        HostAction::Pause
    }
}
