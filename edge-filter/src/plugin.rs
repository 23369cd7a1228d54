//! The proxy-wasm glue: configuration, metrics, and applying each [`Decision`].

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as HostAction, ContextType, LogLevel, MetricType};

use crate::config::Config;
use crate::decision::{Action, Decision, Engine};
use crate::host::{self, request_headers, HostStore};
use crate::metrics::Counter;
use crate::reply::json_error;
use wr_pass::wire::WIRE_HEADER;

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
        let request = engine.read_request(&headers, source.as_deref());
        // Without a clock every pass looks expired: fail closed.
        let now_ms = host::now_ms().unwrap_or(0);
        let decision = engine.decide(&request, now_ms, &HostStore);
        self.count(&decision);
        match decision.action {
            Action::Reply(reply) => self.reply(&reply),
            Action::Forward {
                remove,
                identity,
                to_queue,
            } => {
                let config = engine.config();
                let mut changes: Vec<(&[u8], Option<&[u8]>)> =
                    remove.iter().map(|name| (name.as_slice(), None)).collect();
                if let Some((visitor, event)) = &identity {
                    changes.push((config.visitor_header.as_bytes(), Some(visitor.as_bytes())));
                    changes.push((config.event_header.as_bytes(), Some(event.as_bytes())));
                }
                if to_queue {
                    changes.push((WIRE_HEADER.as_bytes(), Some(config.wire_header.as_bytes())));
                }
                for (name, value) in changes {
                    let done = match value {
                        Some(value) => host::replace_request_header(name, value),
                        None => host::remove_request_header(name),
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
fn unavailable() -> crate::reply::LocalReply {
    json_error(
        503,
        "EDGE_UNAVAILABLE",
        "The edge filter could not process the request.",
        Some(5),
        None,
    )
}

impl EdgeStream {
    fn count(&self, decision: &Decision) {
        for counter in &decision.counters {
            if let Some(Some(id)) = self.metrics.get(counter.index()) {
                let _ = proxy_wasm::hostcalls::increment_metric(*id, 1);
            }
        }
    }

    fn reply(&self, reply: &crate::reply::LocalReply) -> HostAction {
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
