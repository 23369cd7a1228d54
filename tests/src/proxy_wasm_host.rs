//! A small proxy-wasm host on wasmtime: enough of the ABI (0.2.1) to load the built
//! filter, configure it, and run request headers through it with an injected clock,
//! injected peer address and shared data that several VMs ("workers") can share.
//!
//! Imports the filter does not use on these paths trap if called, so a test notices.
//! A trap anywhere (including a Rust panic in the filter) surfaces as `Err`. The
//! imports themselves are in `imports`; this file loads and drives the VM.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::error::Context as _;
use wasmtime::{bail, format_err, Result};
use wasmtime::{Caller, Engine, Extern, Instance, Linker, Module, Store};

mod imports;
use imports::define_host;

/// ABI status codes.
const OK: i32 = 0;
const NOT_FOUND: i32 = 1;
const BAD_ARGUMENT: i32 = 2;
const CAS_MISMATCH: i32 = 8;
/// Buffer type of the plugin configuration.
const PLUGIN_CONFIGURATION: i32 = 7;
/// Header map type of request headers.
const REQUEST_HEADERS: i32 = 0;

/// Shared data with Envoy's semantics: CAS tokens grow on every write; CAS 0 on a write
/// means "unconditional"; no deletion.
#[derive(Clone, Default)]
pub struct SharedData(Arc<Mutex<SharedTable>>);

/// Key → (value, CAS token), and the last CAS token handed out.
type SharedTable = (HashMap<String, (Vec<u8>, u32)>, u32);

impl SharedData {
    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().0.len()
    }

    /// True if nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The injected clock, in unix nanoseconds, shared by VMs.
#[derive(Clone, Default)]
pub struct Clock(Arc<AtomicU64>);

impl Clock {
    /// A clock at `secs` unix seconds.
    pub fn at_secs(secs: u64) -> Clock {
        Clock(Arc::new(AtomicU64::new(secs * 1_000_000_000)))
    }

    /// Moves the clock forward.
    pub fn advance_ms(&self, ms: u64) {
        self.0.fetch_add(ms * 1_000_000, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set_secs(&self, secs: u64) {
        self.0.store(secs * 1_000_000_000, Ordering::SeqCst);
    }
}

/// A local reply sent by the filter.
#[derive(Debug, Clone)]
pub struct LocalResponse {
    /// HTTP status.
    pub status: u32,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl LocalResponse {
    /// First header value by name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The JSON error code in the body.
    pub fn error_code(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v["error"]["code"].as_str().map(str::to_owned)
    }
}

/// What happened to one request.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Continued upstream with these request headers.
    Forwarded(Vec<(Vec<u8>, Vec<u8>)>),
    /// Answered locally.
    Replied(LocalResponse),
}

impl Outcome {
    /// The local reply, if any.
    pub fn reply(&self) -> Option<&LocalResponse> {
        match self {
            Outcome::Replied(r) => Some(r),
            Outcome::Forwarded(_) => None,
        }
    }

    /// 200 for forwarded, else the reply's status.
    pub fn status(&self) -> u32 {
        self.reply().map_or(200, |r| r.status)
    }

    /// A forwarded request header (last value).
    pub fn forwarded_header(&self, name: &str) -> Option<String> {
        match self {
            Outcome::Forwarded(h) => h
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
            Outcome::Replied(_) => None,
        }
    }
}

struct HostState {
    config: Vec<u8>,
    clock: Clock,
    shared: SharedData,
    metric_names: Vec<String>,
    metric_values: Arc<Mutex<HashMap<String, i64>>>,
    logs: Vec<(i32, String)>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    properties: HashMap<String, Vec<u8>>,
    reply: Option<LocalResponse>,
    /// The tick period the filter asked for, if it did.
    tick_ms: Option<u32>,
    /// Calls the filter dispatched (`proxy_http_call`): upstream, headers, body.
    http_calls: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// Host calls made so far, by import name.
    calls: HashMap<&'static str, u64>,
    /// When tracing: each host call made, with the fuel left when it was made.
    trace: Option<Vec<(&'static str, u64)>>,
}

/// Counts one call of the host import `name` (and traces it, when tracing).
fn count_call(caller: &mut C, name: &'static str) {
    let fuel = caller.get_fuel().unwrap_or(0);
    let state = caller.data_mut();
    *state.calls.entry(name).or_default() += 1;
    if let Some(trace) = &mut state.trace {
        trace.push((name, fuel));
    }
}

/// One VM running the filter, as one Envoy worker would.
pub struct FilterVm {
    store: Store<HostState>,
    instance: Instance,
    next_context: u32,
    configured: bool,
    metered: bool,
}

/// What a VM has done so far, by a measure that does not depend on the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Wasm instructions the guest executed (wasmtime's fuel: about one unit per
    /// operator), or 0 if the module was not loaded with [`FilterModule::load_metered`].
    pub fuel: u64,
    /// Host calls the guest made, by import name.
    pub calls: HashMap<&'static str, u64>,
}

impl Work {
    /// The work done between `earlier` and `self`.
    pub fn since(&self, earlier: &Work) -> Work {
        let calls = self
            .calls
            .iter()
            .map(|(name, n)| (*name, n - earlier.calls.get(name).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        Work {
            fuel: self.fuel - earlier.fuel,
            calls,
        }
    }

    /// Host calls of every kind.
    pub fn host_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// Calls of the import `name`.
    pub fn calls_of(&self, name: &str) -> u64 {
        self.calls.get(name).copied().unwrap_or(0)
    }
}

/// The compiled module, shared by VMs.
pub struct FilterModule {
    engine: Engine,
    module: Module,
    metered: bool,
}

/// Fuel a metered VM starts with: more than any run here spends.
const FUEL: u64 = u64::MAX / 2;

impl FilterModule {
    /// Compiles the filter.
    pub fn load(path: &Path) -> Result<FilterModule> {
        Self::compile(path, Engine::default(), false)
    }

    /// Compiles the filter so that its VMs count the wasm instructions they execute
    /// (see [`FilterVm::work`]); they run a little slower.
    pub fn load_metered(path: &Path) -> Result<FilterModule> {
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        Self::compile(path, Engine::new(&config)?, true)
    }

    fn compile(path: &Path, engine: Engine, metered: bool) -> Result<FilterModule> {
        let module =
            Module::from_file(&engine, path).with_context(|| format!("load {}", path.display()))?;
        Ok(FilterModule {
            engine,
            module,
            metered,
        })
    }

    /// Starts a VM and configures it; see [`FilterVm::configured`].
    pub fn start(
        &self,
        config: &[u8],
        clock: &Clock,
        shared: &SharedData,
        metrics: &Metrics,
    ) -> Result<FilterVm> {
        let state = HostState {
            config: config.to_vec(),
            clock: clock.clone(),
            shared: shared.clone(),
            metric_names: Vec::new(),
            metric_values: metrics.0.clone(),
            logs: Vec::new(),
            headers: Vec::new(),
            properties: HashMap::new(),
            reply: None,
            tick_ms: None,
            http_calls: Vec::new(),
            calls: HashMap::new(),
            trace: None,
        };
        let mut store = Store::new(&self.engine, state);
        if self.metered {
            store.set_fuel(FUEL)?;
        }
        let mut linker = Linker::new(&self.engine);
        define_host(&mut linker)?;
        linker.define_unknown_imports_as_traps(&self.module)?;
        let instance = linker.instantiate(&mut store, &self.module)?;
        let mut vm = FilterVm {
            store,
            instance,
            next_context: 2,
            configured: false,
            metered: self.metered,
        };
        vm.call::<(), ()>("_initialize", ())?;
        vm.call::<(i32, i32), ()>("proxy_on_context_create", (1, 0))?;
        let started = vm
            .call_if_exported::<(i32, i32), i32>("proxy_on_vm_start", (1, 0))?
            .unwrap_or(1);
        if started != 1 {
            bail!("proxy_on_vm_start returned {started}");
        }
        let len = config.len() as i32;
        vm.configured = vm
            .call_if_exported::<(i32, i32), i32>("proxy_on_configure", (1, len))?
            .unwrap_or(1)
            == 1;
        Ok(vm)
    }
}

/// Counter values by name, shared by VMs like Envoy's stats.
#[derive(Clone, Default)]
pub struct Metrics(Arc<Mutex<HashMap<String, i64>>>);

impl Metrics {
    /// A counter's value (0 if never incremented).
    pub fn get(&self, name: &str) -> i64 {
        self.0.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

impl FilterVm {
    fn call<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        name: &str,
        params: P,
    ) -> Result<R> {
        let f = self
            .instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .with_context(|| format!("export {name}"))?;
        f.call(&mut self.store, params)
            .with_context(|| format!("call {name}"))
    }

    /// Calls export `name` if the module has it (`None` if not): as Envoy does, for
    /// every callback but context creation and the request's headers.
    fn call_if_exported<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        name: &str,
        params: P,
    ) -> Result<Option<R>> {
        if self.instance.get_func(&mut self.store, name).is_none() {
            return Ok(None);
        }
        self.call(name, params).map(Some)
    }

    /// The tick period the filter asked for (ms), if it did.
    pub fn tick_period_ms(&self) -> Option<u32> {
        self.store.data().tick_ms
    }

    /// One tick of the root context, as the host's timer would give it (the filter
    /// hands its counts over on ticks); an error if the filter never asked for ticks.
    pub fn tick(&mut self) -> Result<()> {
        if self.store.data().tick_ms.is_none() {
            bail!("the filter asked for no tick period");
        }
        self.call::<i32, ()>("proxy_on_tick", 1)
    }

    /// The host removes the plugin: its root context is done and deleted, as Envoy's
    /// shutdown does (`proxy_on_done`, then `proxy_on_delete`, each if exported).
    pub fn delete_root(&mut self) -> Result<()> {
        self.call_if_exported::<i32, i32>("proxy_on_done", 1)?;
        self.call_if_exported::<i32, ()>("proxy_on_delete", 1)?;
        Ok(())
    }

    /// Request headers for a stream id the VM was never told about (no context
    /// create): what the filter answers a host that skips a step.
    pub fn request_of_unknown_stream(&mut self, headers: &[(&[u8], &[u8])]) -> Result<Outcome> {
        let id = self.next_stream(headers, None);
        let action = self.call::<(i32, i32, i32), i32>(
            "proxy_on_request_headers",
            (id, headers.len() as i32, 1),
        )?;
        self.outcome(action)
    }

    /// What this VM has done since it started (configuration included); take the
    /// difference of two readings with [`Work::since`].
    pub fn work(&self) -> Work {
        let fuel = match self.store.get_fuel() {
            Ok(left) if self.metered => FUEL - left,
            _ => 0,
        };
        Work {
            fuel,
            calls: self.store.data().calls.clone(),
        }
    }

    /// Runs one request as [`FilterVm::request`] does and returns the fuel the guest
    /// spent before each host call it made, then after the last one (named `return`),
    /// up to the end of the request: where a metered VM's work goes.
    pub fn trace_request(
        &mut self,
        headers: &[(&[u8], &[u8])],
        peer: Option<&str>,
    ) -> Result<Vec<(&'static str, u64)>> {
        let start = self.store.get_fuel()?;
        self.store.data_mut().trace = Some(Vec::new());
        let outcome = self.request(headers, peer);
        let trace = self.store.data_mut().trace.take().unwrap_or_default();
        outcome?;
        let end = self.store.get_fuel()?;
        let mut left = start;
        let mut stages = Vec::new();
        for (name, fuel) in trace.into_iter().chain([("return", end)]) {
            stages.push((name, left - fuel));
            left = fuel;
        }
        Ok(stages)
    }

    /// Whether `proxy_on_configure` accepted the configuration.
    pub fn configured(&self) -> bool {
        self.configured
    }

    /// Log lines the filter wrote, with proxy-wasm levels (0 trace … 4 error).
    pub fn logs(&self) -> &[(i32, String)] {
        &self.store.data().logs
    }

    /// Runs one request's headers through the filter. `peer` becomes `source.address`.
    pub fn request(&mut self, headers: &[(&[u8], &[u8])], peer: Option<&str>) -> Result<Outcome> {
        let id = self.next_stream(headers, peer);
        self.call::<(i32, i32), ()>("proxy_on_context_create", (id, 1))?;
        let action = self.call::<(i32, i32, i32), i32>(
            "proxy_on_request_headers",
            (id, headers.len() as i32, 1),
        )?;
        self.call_if_exported::<i32, i32>("proxy_on_done", id)?;
        self.call_if_exported::<i32, ()>("proxy_on_log", id)?;
        self.call_if_exported::<i32, ()>("proxy_on_delete", id)?;
        self.outcome(action)
    }

    /// A new stream id, with the host state set up for its request.
    fn next_stream(&mut self, headers: &[(&[u8], &[u8])], peer: Option<&str>) -> i32 {
        let id = self.next_context as i32;
        self.next_context += 1;
        let state = self.store.data_mut();
        state.headers = headers
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        state.properties.clear();
        if let Some(peer) = peer {
            state
                .properties
                .insert("source\0address".into(), peer.as_bytes().to_vec());
        }
        state.reply = None;
        id
    }

    /// What the filter did with a request, from the action it returned and any reply.
    fn outcome(&mut self, action: i32) -> Result<Outcome> {
        let state = self.store.data_mut();
        match (action, state.reply.take()) {
            (0, None) => Ok(Outcome::Forwarded(std::mem::take(&mut state.headers))),
            (1, Some(reply)) => Ok(Outcome::Replied(reply)),
            (action, reply) => Err(format_err!(
                "inconsistent: action {action}, local reply {reply:?}"
            )),
        }
    }

    /// Convenience: a GET with these extra headers from `peer`.
    pub fn get(&mut self, path: &str, extra: &[(&str, &str)], peer: &str) -> Result<Outcome> {
        let mut headers: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"GET"),
            (b":path", path.as_bytes()),
            (b":authority", b"shop.test"),
        ];
        headers.extend(extra.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        self.request(&headers, Some(peer))
    }
}

/// What a host function is handed: the caller, with this host's state.
type C<'a> = Caller<'a, HostState>;
