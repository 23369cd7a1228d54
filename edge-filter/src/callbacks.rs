//! The proxy-wasm callbacks this module exports, and only those.
//!
//! Envoy enters a VM only for the callbacks its module exports, and every entry costs
//! Envoy about 1,400 instructions before the filter runs any code of its own (measured
//! with callgrind: `bench-edge --count`, docs/edge.md). The proxy-wasm Rust SDK exports
//! every callback, so with it each request entered the VM seven times: context create,
//! request headers, response headers, response body, log, done and delete. A request
//! enters this module four times:
//!
//! - `proxy_on_context_create`: the stream notes its root (its plugin configuration);
//! - `proxy_on_request_headers`: the decision, applied; an admitted request's session
//!   is noted for its response;
//! - `proxy_on_response_headers`: one lookup for the session-end header (and, when it
//!   is there, the core's changes and a report for origin-queue);
//! - `proxy_on_delete`: the stream's note goes; for a root, its last counts go out and
//!   the root goes (without this export Envoy would never say a root is gone, and every
//!   reconfiguration would leave one behind).
//!
//! Roots also get `proxy_on_tick` (counts, reports) and `proxy_on_http_call_response`
//! (origin-queue's answer to a report).
//!
//! Not linking the SDK also removes its panics on a context id it does not know (a
//! panic traps the worker's VM): here an unknown id is a logged 503, never a trap.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::host;
use crate::logger;
use crate::plugin::{self, EdgeRoot, HostAction};
use wr_edge_core::session_end::Session;

/// Context ids hashed by one multiplication: they are small integers the host hands
/// out in sequence, not chosen by clients.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Fibonacci hashing: the table uses the high bits, which the multiply fills.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u32` is used (the key is a `u32`); this keeps the trait whole.
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id);
    }
}

type ById<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

/// Every live context of this VM.
#[derive(Default)]
struct Contexts {
    /// Root contexts (one per plugin configuration sharing this VM), by id.
    roots: ById<EdgeRoot>,
    /// Live streams: stream id → its root's id and the session it admitted.
    streams: ById<Stream>,
}

/// What a live stream remembers between its request and its response.
struct Stream {
    root: u32,
    session: Option<Session>,
}

thread_local! {
    static CONTEXTS: RefCell<Contexts> = RefCell::default();
}

/// Runs `f` on the contexts; `None` if they are already in use (a host that calls back
/// into the VM from inside a host call; Envoy does not).
fn with_contexts<R>(f: impl FnOnce(&mut Contexts) -> R) -> Option<R> {
    CONTEXTS.with(|contexts| contexts.try_borrow_mut().ok().map(|mut c| f(&mut c)))
}

/// The module's ABI version.
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

extern "C" {
    fn __wasm_call_ctors();
}

/// Called once, before any other callback.
#[no_mangle]
pub extern "C" fn _initialize() {
    // SAFETY: the linker's constructor list, run once as the reactor ABI asks.
    unsafe { __wasm_call_ctors() };
    logger::install();
}

/// A buffer for the host to fill (header maps, properties, the configuration).
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    host::allocate_for_host(size)
}

/// A new root context (`root_context_id` 0) or a new stream of root `root_context_id`.
#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, root_context_id: u32) {
    let created = with_contexts(|c| {
        if root_context_id == 0 {
            c.roots.entry(context_id).or_default();
        } else {
            let stream = Stream {
                root: root_context_id,
                session: None,
            };
            c.streams.insert(context_id, stream);
        }
    });
    if created.is_none() {
        log::error!("wr-edge: context {context_id} created during a host call");
    }
}

/// The VM started: nothing to do before configuration.
#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_context_id: u32, _configuration_size: usize) -> bool {
    true
}

/// The plugin configuration of root `root_context_id`; false refuses the plugin.
#[no_mangle]
pub extern "C" fn proxy_on_configure(root_context_id: u32, _configuration_size: usize) -> bool {
    with_contexts(|c| c.roots.entry(root_context_id).or_default().configure()).unwrap_or(false)
}

/// The tick root `root_context_id` asked for.
#[no_mangle]
pub extern "C" fn proxy_on_tick(root_context_id: u32) {
    with_contexts(|c| c.roots.get_mut(&root_context_id).map(EdgeRoot::tick));
}

/// A stream's request headers: decide, and apply the decision.
#[no_mangle]
pub extern "C" fn proxy_on_request_headers(
    context_id: u32,
    _headers: usize,
    _end_of_stream: bool,
) -> u32 {
    let action = with_contexts(|c| {
        let stream = c.streams.get_mut(&context_id)?;
        let (action, session) = c.roots.get_mut(&stream.root)?.request_headers();
        stream.session = session;
        Some(action)
    });
    match action.flatten() {
        Some(action) => action as u32,
        None => {
            // A stream of no root this VM knows: fail closed.
            log::error!("wr-edge: request headers of unknown stream {context_id}");
            plugin::reply(&plugin::unavailable()) as u32
        }
    }
}

/// A stream's response headers: the backend may end the visitor's session.
#[no_mangle]
pub extern "C" fn proxy_on_response_headers(
    context_id: u32,
    _headers: usize,
    _end_of_stream: bool,
) -> u32 {
    let action = with_contexts(|c| {
        let stream = c.streams.get(&context_id)?;
        let root = c.roots.get_mut(&stream.root)?;
        Some(root.response_headers(stream.session.as_ref()))
    });
    action.flatten().unwrap_or(HostAction::Continue) as u32
}

/// The answer to a call root `root_context_id` dispatched (a session-end report).
#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    root_context_id: u32,
    token: u32,
    _headers: usize,
    _body_size: usize,
    _trailers: usize,
) {
    with_contexts(|c| {
        c.roots
            .get_mut(&root_context_id)
            .map(|root| root.http_call_response(token))
    });
}

/// A context is gone: a stream's note goes; a root hands its last counts over and goes.
#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    with_contexts(|c| {
        if c.streams.remove(&context_id).is_none() {
            if let Some(mut root) = c.roots.remove(&context_id) {
                root.done();
            }
        }
    });
}

/// Keeps [`HostAction`]'s values those of the ABI.
const _: () = assert!(HostAction::Continue as u32 == 0 && HostAction::Pause as u32 == 1);
