//! `origin-queue serve`: connect, start the admission loop, serve until SIGTERM/Ctrl-C,
//! then drain in-flight requests.

use std::sync::Arc;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{router, Admin, AppState, Gates, Identity, Queue, Tickets};
use crate::batching::join_batch::JoinBatcher;
use crate::batching::status_batch::StatusBatcher;
use crate::gates::in_flight::InFlight;
use crate::gates::limiter::Limiter;
use crate::gates::missed_polls::MissedPolls;
use crate::metrics::Metrics;
use crate::service::settings::Settings;
use crate::store::Store;

/// Most clients (and visitors) each limiter tracks at once.
const MAX_TRACKED: usize = 200_000;

/// The service without its listener: connected to Redis, the admission loop running.
/// `serve` puts it behind a socket; tests may drive [`Service::router`] in-process.
pub struct Service {
    state: AppState,
    listen: std::net::SocketAddr,
    backlog: u32,
    admission: JoinHandle<()>,
    autopilot: JoinHandle<()>,
    /// The console's sampler, while the admin API is on.
    sampler: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Service {
    /// Connects to Redis Cluster on `redis` (a runtime whose threads serve Redis only)
    /// and starts the admission loop and the batchers there.
    pub async fn start(
        settings: Settings,
        redis: tokio::runtime::Handle,
    ) -> Result<Service, String> {
        let (target, timeout) = (settings.redis.clone(), settings.redis_timeout);
        let store = redis
            .spawn(async move { Store::connect(&target, timeout).await })
            .await
            .map_err(|e| format!("the Redis runtime stopped: {e}"))?
            .map_err(|e| {
                format!(
                    "cannot reach Redis Cluster at {:?}: {e}",
                    settings.redis.nodes()
                )
            })?
            .with_join_replicas(settings.join_replicas);
        let jwt = match settings.jwt {
            Some(jwt_settings) => {
                let verifier =
                    Arc::new(crate::identity::jwt::JwtVerifier::load(jwt_settings).await?);
                verifier.spawn_refresh();
                Some(verifier)
            }
            None => None,
        };
        let metrics = Arc::new(Metrics::default());
        let (stop, stop_rx) = watch::channel(false);
        let missed_polls = Arc::new(MissedPolls::default());
        let admission = store.spawn(crate::admission::run(
            store.clone(),
            metrics.clone(),
            missed_polls.clone(),
            settings.tick,
            stop_rx.clone(),
        ));
        let console = Arc::new(crate::console::History::default());
        let sampler = settings.admin_token.is_some().then(|| {
            store.spawn(crate::console::run(
                store.clone(),
                metrics.clone(),
                settings.autopilot_sources.clone(),
                console.clone(),
                stop_rx.clone(),
            ))
        });
        let autopilot = store.spawn(crate::autopilot::run(
            store.clone(),
            metrics.clone(),
            crate::autopilot::Sources {
                envoys: settings.autopilot_sources.clone(),
                cluster: settings.autopilot_cluster.clone(),
            },
            stop_rx,
        ));
        let state = AppState {
            queue: Arc::new(Queue {
                joins: JoinBatcher::start(store.clone()),
                status_polls: StatusBatcher::start(store.clone()),
                store,
            }),
            tickets: Arc::new(Tickets {
                keys: settings.keys,
                wire: settings.wire,
                cookie_secure: settings.cookie_secure,
                ticket_ttl_secs: settings.ticket_ttl_secs,
            }),
            gates: Arc::new(Gates {
                join_cap: InFlight::new(settings.max_in_flight, settings.redis_timeout / 2),
                poll_cap: InFlight::new(settings.max_in_flight, settings.redis_timeout / 2),
                missed_polls,
                client_limiter: Limiter::new(settings.client_limit, MAX_TRACKED),
                visitor_limiter: Limiter::new(settings.visitor_limit, MAX_TRACKED),
                trusted_proxies: settings.trusted_proxies,
            }),
            identity: Identity(jwt),
            admin: Arc::new(Admin {
                token: settings.admin_token,
            }),
            metrics,
            console,
        };
        Ok(Service {
            state,
            listen: settings.listen,
            backlog: settings.listen_backlog,
            admission,
            autopilot,
            sampler,
            stop,
        })
    }

    /// The routes, over this service's state.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Serves on the configured address until `shutdown` completes, then drains the
    /// requests in flight and stops the admission loop.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        let (listen, backlog) = (self.listen, self.backlog);
        let listener =
            listen_on(listen, backlog).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        tracing::info!(listen = %listen, backlog, "origin-queue serving");
        crate::service::http_server::serve(listener, self.router(), shutdown).await;
        let _ = self.stop.send(true);
        let _ = self.admission.await;
        let _ = self.autopilot.await;
        if let Some(sampler) = self.sampler {
            let _ = sampler.await;
        }
        tracing::info!("origin-queue stopped");
        Ok(())
    }
}

/// Runs the service until SIGTERM or Ctrl-C. The Redis connection, the status batch
/// workers and the admission loop run on `redis` (a runtime with a thread of its own);
/// the HTTP connections on the runtime this is called on. Under a flood of connections,
/// a task woken on the main runtime waits behind every busy connection; the Redis side
/// does not.
pub async fn run(settings: Settings, redis: tokio::runtime::Handle) -> Result<(), String> {
    Service::start(settings, redis)
        .await?
        .serve(shutdown_signal())
        .await
}

/// A listening socket with room for `backlog` connections not yet accepted: a crowd
/// arriving at once waits in the kernel's queue instead of being refused (the kernel
/// caps the number at `net.core.somaxconn`).
fn listen_on(addr: std::net::SocketAddr, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested: draining");
}
