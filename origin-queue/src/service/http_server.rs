//! Serving the router on a socket, HTTP/1.1 and HTTP/2 (prior knowledge) on one port,
//! with the connection limits chosen for what a proxy in front forwards.
//!
//! `axum::serve` keeps hyper's defaults, and one of them broke other people's requests:
//! hyper accepts an HTTP/2 header list of at most 16 KiB, and a header block spread
//! over several frames past that limit makes it close the whole connection
//! (`GOAWAY COMPRESSION_ERROR`). Envoy multiplexes every visitor's queue calls onto a
//! few HTTP/2 connections and accepts up to 60 KiB of headers from a client, so one
//! client's 30 KiB cookies failed every request in flight beside it. Here the header
//! list may be [`UPSTREAM_MAX_HEADER_LIST_BYTES`], more than any proxy in front forwards:
//! whatever is too large is refused by the edge, for that request alone. (A client on
//! origin-queue's own port past that limit gets 431 for a request in one frame, and its
//! own connection closed for one spread over several.)

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::Service;
use wr_pass::wire::{UPSTREAM_MAX_HEADERS, UPSTREAM_MAX_HEADER_LIST_BYTES};

/// The connection settings: an HTTP/2 header list of [`UPSTREAM_MAX_HEADER_LIST_BYTES`]
/// (an HTTP/1.1 head may be larger still: hyper reads up to about 400 KiB), and
/// [`UPSTREAM_MAX_HEADERS`] headers over HTTP/1.1, read within hyper's 30 s.
fn builder() -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_headers(UPSTREAM_MAX_HEADERS);
    builder
        .http2()
        .max_header_list_size(UPSTREAM_MAX_HEADER_LIST_BYTES as u32);
    builder
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the requests in
/// flight finish (each handler gives ConnectInfo the peer's address).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let builder = builder();
    let graceful = GracefulShutdown::new();
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // One connection's trouble (reset or aborted before it was accepted).
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors or memory: wait for some to be freed, as
                    // axum::serve does, instead of spinning.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = match make_service.call(peer).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// True for accept errors that concern one connection only.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
