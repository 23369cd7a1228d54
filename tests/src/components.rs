//! The edge's WebAssembly components under wasmtime, in-process:
//!
//! * [`Decider`]: the `waiting-room:edge/decider` world (`wit/edge.wit`), with this
//!   host's clock and rate-limit state behind its imports;
//! * [`Gateway`]: the `wasi:http/proxy` component, driven by `wasmtime-wasi-http` of
//!   the same version: one instance reused for every request (as a host that keeps
//!   instances does; its rate-limit state lives in the instance), optionally on a
//!   loopback port ([`Gateway::serve`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, Result, Store};
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::fixtures::{build_release, target_dir};

/// Host bindings of the `decider` world.
mod wit {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "decider",
    });
}

use wit::exports::waiting_room::edge::decide::Guest as DecideExports;
use wit::waiting_room::edge::host;
pub use wit::waiting_room::edge::types::{
    Action, Decision, HeaderChange, Rejection, Request, ResponseChange, ResponseDecision, Session,
};
use wit::Decider as DeciderWorld;

/// Builds a crate for wasm32-wasip2 (a component) once per test process and returns the
/// `.wasm`.
fn built_component(package: &str, file: &str) -> PathBuf {
    build_release(package, "wasm32-wasip2");
    target_dir().join("wasm32-wasip2/release").join(file)
}

/// The decider component's `.wasm`.
pub fn decider_wasm() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| built_component("wr-edge-wasi", "wr_edge_wasi.wasm"))
}

/// The gateway component's `.wasm`.
pub fn gateway_wasm() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| built_component("wr-edge-gateway", "wr_edge_gateway.wasm"))
}

/// A clock fixed at a unix time, for WASI's wall clock.
struct FixedClock(Duration);

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

/// The decider's host: WASI for the Rust standard library, a clock and the state.
struct DeciderState {
    wasi: WasiCtx,
    table: ResourceTable,
    now_ms: u64,
    state: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl WasiView for DeciderState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The `types` interface has no functions.
impl wit::waiting_room::edge::types::Host for DeciderState {}

impl host::Host for DeciderState {
    fn now_ms(&mut self) -> u64 {
        self.now_ms
    }

    fn state_get(&mut self, key: String) -> Option<(Vec<u8>, u32)> {
        self.state.get(&key).cloned()
    }

    fn state_set(
        &mut self,
        key: String,
        value: Vec<u8>,
        cas: u32,
    ) -> std::result::Result<(), host::StateError> {
        if let Some((_, current)) = self.state.get(&key) {
            if cas != 0 && cas != *current {
                return Err(host::StateError::CasMismatch);
            }
        }
        self.next_cas += 1;
        self.state.insert(key, (value, self.next_cas));
        Ok(())
    }
}

/// The decider component, instantiated with a configuration, a clock and empty state.
pub struct Decider {
    store: Store<DeciderState>,
    bindings: DeciderWorld,
    edge: ResourceAny,
}

/// The compiled decider, shared by instances.
pub struct DeciderModule {
    engine: Engine,
    component: Component,
    linker: Linker<DeciderState>,
}

impl DeciderModule {
    /// Compiles the component and links WASI and the host imports.
    pub fn load() -> Result<DeciderModule> {
        let engine = Engine::default();
        let component = Component::from_file(&engine, decider_wasm())?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        DeciderWorld::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)?;
        Ok(DeciderModule {
            engine,
            component,
            linker,
        })
    }

    /// A fresh instance configured with `config` at `now_ms`; `Err` lists the
    /// configuration's problems.
    pub fn start(
        &self,
        config: &str,
        now_ms: u64,
    ) -> Result<std::result::Result<Decider, Vec<String>>> {
        let state = DeciderState {
            wasi: WasiCtx::builder().inherit_stderr().build(),
            table: ResourceTable::new(),
            now_ms,
            state: HashMap::new(),
            next_cas: 0,
        };
        let mut store = Store::new(&self.engine, state);
        let bindings = DeciderWorld::instantiate(&mut store, &self.component, &self.linker)?;
        let created = bindings
            .waiting_room_edge_decide()
            .edge()
            .call_create(&mut store, config)?;
        Ok(created.map(|edge| Decider {
            store,
            bindings,
            edge,
        }))
    }
}

impl Decider {
    /// Decides for `request`.
    pub fn decide(&mut self, request: &Request) -> Result<Decision> {
        let guest: &DecideExports = self.bindings.waiting_room_edge_decide();
        guest
            .edge()
            .call_decide(&mut self.store, self.edge, request)
    }

    /// Decides for a response to a request whose decision carried `session`.
    pub fn respond(
        &mut self,
        session: Option<&Session>,
        headers: &[(String, String)],
    ) -> Result<ResponseDecision> {
        let guest: &DecideExports = self.bindings.waiting_room_edge_decide();
        guest
            .edge()
            .call_respond(&mut self.store, self.edge, session, headers)
    }
}

/// The gateway's host state: WASI, wasi:http, the resource table.
struct GatewayState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiView for GatewayState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for GatewayState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// The compiled gateway component and the runtime its instances run on.
pub struct GatewayModule {
    runtime: Arc<tokio::runtime::Runtime>,
    engine: Engine,
    pre: ProxyPre<GatewayState>,
}

impl GatewayModule {
    /// Compiles the component and links WASI and wasi:http (wasmtime-wasi-http).
    pub fn load() -> Result<GatewayModule> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let engine = Engine::default();
        let component = Component::from_file(&engine, gateway_wasm())?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
        Ok(GatewayModule {
            runtime: Arc::new(runtime),
            engine,
            pre,
        })
    }

    /// An instance with these environment variables and, if given, a wall clock fixed at
    /// `now_secs`.
    pub fn start(&self, env: &[(&str, String)], now_secs: Option<u64>) -> Result<Gateway> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        for (name, value) in env {
            wasi.env(name, value);
        }
        if let Some(secs) = now_secs {
            wasi.wall_clock(FixedClock(Duration::from_secs(secs)));
        }
        let state = GatewayState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        let proxy = self
            .runtime
            .block_on(self.pre.instantiate_async(&mut store))?;
        Ok(Gateway {
            runtime: self.runtime.clone(),
            instance: Arc::new(tokio::sync::Mutex::new((store, proxy))),
        })
    }
}

/// One instance of the gateway component, serving requests one at a time.
pub struct Gateway {
    runtime: Arc<tokio::runtime::Runtime>,
    instance: Arc<tokio::sync::Mutex<(Store<GatewayState>, Proxy)>>,
}

/// An answer of the gateway.
#[derive(Debug, Clone)]
pub struct GatewayResponse {
    /// Status.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Gateway {
    /// Sends one request through the gateway (in-process, no socket).
    pub fn send(&self, request: hyper::Request<Full<Bytes>>) -> Result<GatewayResponse> {
        let instance = self.instance.clone();
        self.runtime.block_on(async move {
            let response = handle(&instance, request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes().to_vec();
            let headers = parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            Ok(GatewayResponse {
                status: parts.status.as_u16(),
                headers,
                body,
            })
        })
    }

    /// Serves the gateway over HTTP/1.1 on a loopback port until dropped.
    pub fn serve(&self) -> Result<SocketAddr> {
        let listener = self
            .runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let instance = self.instance.clone();
        self.runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let instance = instance.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let instance = instance.clone();
                            async move {
                                let (parts, body) = request.into_parts();
                                let body = body.collect().await?.to_bytes();
                                handle(
                                    &instance,
                                    hyper::Request::from_parts(parts, Full::new(body)),
                                )
                                .await
                            }
                        },
                    );
                    let io = hyper_util::rt::TokioIo::new(client);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Ok(addr)
    }
}

/// One request through the instance (requests take turns: one instance). The guest
/// runs in a task of its own so that its body streams while the answer is read.
async fn handle(
    instance: &Arc<tokio::sync::Mutex<(Store<GatewayState>, Proxy)>>,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<HyperOutgoingBody>> {
    let instance = instance.clone();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut guard = instance.lock_owned().await;
        let (store, proxy) = &mut *guard;
        let request = request.map(|body| {
            body.map_err(|never: std::convert::Infallible| -> hyper::Error { match never {} })
        });
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut *store, request, out)
            .await
    });
    match receiver.await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => match task.await {
            Ok(Ok(())) => wasmtime::bail!("the gateway never answered"),
            Ok(Err(e)) => Err(e.context("the gateway never answered")),
            Err(e) => Err(e.into()),
        },
    }
}
