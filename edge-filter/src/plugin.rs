//! The proxy-wasm glue: configuration, metrics, and applying each [`Decision`].

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as HostAction, ContextType, LogLevel, MetricType};

use wr_edge_core::config::Config;
use wr_edge_core::decision::Engine;
use wr_edge_core::metrics::Counter;
use wr_edge_core::outcome::{HeaderChange, Outcome};
use wr_edge_core::reply::{json_error, LocalReply};

use crate::host::{self, request_headers, HostStore};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(EdgeRoot::default()));
}}

/// Metric ids from the host, by [`Counter::index`].
type MetricIds = Rc<Vec<Option<u32>>>;

/// One per worker VM: holds the validated configuration.
#[derive(Default)]
struct EdgeRoot {
    engine: Option<Rc<Engine>>,
    metrics: MetricIds,
}

impl Context for EdgeRoot {}

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
        self.metrics = Rc::new(ids);
        self.engine = Some(Rc::new(Engine::new(config)));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(EdgeStream {
            engine: self.engine.clone(),
            metrics: self.metrics.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One per HTTP request.
struct EdgeStream {
    engine: Option<Rc<Engine>>,
    metrics: MetricIds,
}

impl Context for EdgeStream {}

impl HttpContext for EdgeStream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> HostAction {
        let Some(engine) = self.engine.clone() else {
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
        let source = host::property(&["source", "address"]);
        // Without a clock every pass looks expired: fail closed.
        let now_ms = host::now_ms().unwrap_or(0);
        match engine.outcome(&headers, source.as_deref(), now_ms, &HostStore) {
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
        for counter in counters {
            if let Some(Some(id)) = self.metrics.get(counter.index()) {
                let _ = proxy_wasm::hostcalls::increment_metric(*id, 1);
            }
        }
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
