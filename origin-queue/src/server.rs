//! `origin-queue serve`: connect, start the admission loop, serve until SIGTERM/Ctrl-C,
//! then drain in-flight requests.

use std::sync::Arc;

use tokio::sync::watch;

use crate::api::{router, AppState};
use crate::in_flight::InFlight;
use crate::join_batch::JoinBatcher;
use crate::limiter::Limiter;
use crate::metrics::Metrics;
use crate::missed_polls::MissedPolls;

/// Most clients (and visitors) each limiter tracks at once.
const MAX_TRACKED: usize = 200_000;
use crate::settings::Settings;
use crate::status_batch::StatusBatcher;
use crate::store::Store;

/// Runs the service. The Redis connection, the status batch workers and the admission
/// loop run on `redis` (a runtime with a thread of its own); the HTTP connections on the
/// runtime this is called on. Under a flood of connections, a task woken on the main
/// runtime waits behind every busy connection; the Redis side does not.
pub async fn run(settings: Settings, redis: tokio::runtime::Handle) -> Result<(), String> {
    let (nodes, timeout) = (settings.redis_nodes.clone(), settings.redis_timeout);
    let store = redis
        .spawn(async move { Store::connect(&nodes, timeout).await })
        .await
        .map_err(|e| format!("the Redis runtime stopped: {e}"))?
        .map_err(|e| {
            format!(
                "cannot reach Redis Cluster at {:?}: {e:?}",
                settings.redis_nodes
            )
        })?
        .with_join_replicas(settings.join_replicas);
    let jwt = match settings.jwt {
        Some(jwt_settings) => {
            let verifier = Arc::new(crate::jwt::JwtVerifier::load(jwt_settings).await?);
            verifier.spawn_refresh();
            Some(verifier)
        }
        None => None,
    };
    let metrics = Arc::new(Metrics::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let missed_polls = Arc::new(MissedPolls::default());
    let admission = store.spawn(crate::admission::run(
        store.clone(),
        metrics.clone(),
        missed_polls.clone(),
        settings.tick,
        stop_rx,
    ));
    let joins = JoinBatcher::start(store.clone());
    let status_polls = StatusBatcher::start(store.clone());
    let state = Arc::new(AppState {
        store,
        joins,
        status_polls,
        keys: settings.keys,
        wire: settings.wire,
        metrics,
        admin_token: settings.admin_token,
        cookie_secure: settings.cookie_secure,
        ticket_ttl_secs: settings.ticket_ttl_secs,
        join_cap: InFlight::new(settings.max_in_flight, settings.redis_timeout / 2),
        poll_cap: InFlight::new(settings.max_in_flight, settings.redis_timeout / 2),
        missed_polls,
        client_limiter: Limiter::new(settings.client_limit, MAX_TRACKED),
        visitor_limiter: Limiter::new(settings.visitor_limit, MAX_TRACKED),
        trusted_proxies: settings.trusted_proxies,
        jwt,
    });
    let listener = listen(settings.listen, settings.listen_backlog)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    tracing::info!(listen = %settings.listen, backlog = settings.listen_backlog, "origin-queue serving");
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| format!("server error: {e}"))?;
    let _ = stop_tx.send(true);
    let _ = admission.await;
    tracing::info!("origin-queue stopped");
    Ok(())
}

/// A listening socket with room for `backlog` connections not yet accepted: a crowd
/// arriving at once waits in the kernel's queue instead of being refused (the kernel
/// caps the number at `net.core.somaxconn`).
fn listen(addr: std::net::SocketAddr, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
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
