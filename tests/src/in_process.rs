//! origin-queue built in-process (as axum's `testing` example does): the same
//! [`Service`] the binary runs, on a runtime of its own, serving on a loopback port.
//! It starts in milliseconds, with no build of the binary and no child process; tests
//! that need a process (signals, start-up refusals, a restart) use
//! [`crate::processes::OriginQueue`].

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use origin_queue::env::Env;
use origin_queue::server::Service;
use origin_queue::settings::Settings;
use tokio::sync::oneshot;

use crate::processes::{free_port, origin_queue_env};

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
        let mut pairs = origin_queue_env(nodes, addr);
        pairs.extend(extra_env.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let settings = Settings::from_env(&Env::from_pairs(&pairs))
            .unwrap_or_else(|e| panic!("origin-queue refuses to start: {e}"));
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
