//! origin-queue built in-process: the same [`Service`] the binary runs, on a runtime of
//! its own, with no build of the binary and no child process. Two ways to reach it:
//!
//! * [`InProcessRouter`], as axum's `testing` example does: each request goes straight
//!   to the router (`tower::ServiceExt::oneshot`), no port, no socket. For everything the
//!   network does not change.
//! * [`InProcessQueue`]: serving on a loopback port, for what needs one (raw bytes on a
//!   socket, the listen backlog, requests from several client addresses).
//!
//! Tests that need a process (signals, start-up refusals, a restart) use
//! [`crate::processes::OriginQueue`].

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use origin_queue::service::env::Env;
use origin_queue::service::server::Service;
use origin_queue::service::settings::Settings;
use tokio::sync::oneshot;

use crate::http::{Response, Target};
use crate::processes::{free_port, origin_queue_env};

/// The tests' settings for an in-process origin-queue against `nodes` on `addr`, with
/// `extra_env` (later values win); panics with the service's message if refused.
fn settings(nodes: &[String], addr: SocketAddr, extra_env: &[(&str, &str)]) -> Settings {
    let mut pairs = origin_queue_env(nodes, addr);
    pairs.extend(extra_env.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Settings::from_env(&Env::from_pairs(&pairs))
        .unwrap_or_else(|e| panic!("origin-queue refuses to start: {e}"))
}

/// origin-queue's router in-process: its admission loop and batchers run on a runtime
/// of this value's own, and each request is handed to the router directly, as coming
/// from 127.0.0.1. Stopped (its runtime and every task on it) on drop.
pub struct InProcessRouter {
    router: axum::Router,
    service: Option<Service>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl InProcessRouter {
    /// Starts origin-queue against `nodes` with the tests' settings and `extra_env`.
    pub fn start(nodes: &[String], extra_env: &[(&str, &str)]) -> InProcessRouter {
        // No socket is opened: the listen address is only a setting here.
        let addr: SocketAddr = "127.0.0.1:9".parse().expect("address");
        let settings = settings(nodes, addr, extra_env);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for origin-queue");
        let service = runtime
            .block_on(Service::start(settings, runtime.handle().clone()))
            .unwrap_or_else(|e| panic!("origin-queue did not start: {e}"));
        InProcessRouter {
            router: service.router(),
            service: Some(service),
            runtime: Some(runtime),
        }
    }
}

impl Target for &InProcessRouter {
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> anyhow::Result<Response> {
        use tower::ServiceExt;
        let invalid = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");
        let mut request = axum::http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request
            .body(axum::body::Body::from(body.to_vec()))
            .map_err(|e| invalid(&e))?;
        // What the server gives every handler: the peer's address.
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("address");
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let runtime = self.runtime.as_ref().expect("running");
        runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .map_err(|e| invalid(&e))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .map_err(|e| invalid(&e))?
                .to_vec();
            Ok(Response {
                status,
                headers,
                body,
            })
        })
    }
}

impl Drop for InProcessRouter {
    fn drop(&mut self) {
        drop(self.service.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// A running in-process origin-queue; stopped (drained) on drop.
pub struct InProcessQueue {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl InProcessQueue {
    /// Starts origin-queue against `nodes` with the tests' settings and `extra_env`
    /// (later values win); returns once it listens. Panics, with the service's own
    /// message, if it refuses to start.
    pub fn start(nodes: &[String], extra_env: &[(&str, &str)]) -> InProcessQueue {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let settings = settings(nodes, addr, extra_env);
        let (stop, stopped) = oneshot::channel::<()>();
        let (started_tx, started) = mpsc::channel::<Result<(), String>>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for origin-queue");
            runtime.block_on(async move {
                let service =
                    match Service::start(settings, tokio::runtime::Handle::current()).await {
                        Ok(service) => service,
                        Err(e) => {
                            let _ = started_tx.send(Err(e));
                            return;
                        }
                    };
                let _ = started_tx.send(Ok(()));
                let shutdown = async move {
                    let _ = stopped.await;
                };
                if let Err(e) = service.serve(shutdown).await {
                    eprintln!("in-process origin-queue: {e}");
                }
            });
        });
        match started.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("origin-queue did not start: {e}"),
            Err(_) => panic!("origin-queue's thread ended before it started"),
        }
        // The socket is bound inside `serve`: wait until it answers.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !crate::http::get(addr, "/readyz", &[]).is_ok_and(|r| r.status == 200) {
            assert!(
                Instant::now() < deadline,
                "origin-queue not ready after 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        InProcessQueue {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for InProcessQueue {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
