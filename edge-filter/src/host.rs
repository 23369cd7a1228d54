//! Raw proxy-wasm host calls: every call the filter makes into Envoy.
//!
//! The filter does not link the proxy-wasm SDK (see [`crate::callbacks`]). Its wrappers
//! also turned a non-UTF-8 header or an unexpected status into a panic, and a panic
//! traps the worker's VM. These return bytes and `Result`s instead, and parse what the
//! host hands back with bounds checks.

use std::ptr::null_mut;

use wr_pass::wire::EDGE_REPLY_DETAILS;

use crate::header_map::{serialize_header_map, HeaderPairs};
use wr_edge_core::rate_limit::{SharedStore, StoreError};

/// Status codes of the proxy-wasm ABI used here.
const STATUS_OK: u32 = 0;
const STATUS_NOT_FOUND: u32 = 1;
const STATUS_CAS_MISMATCH: u32 = 8;
/// `MapType::HttpRequestHeaders`.
const REQUEST_HEADERS: u32 = 0;
/// `MapType::HttpResponseHeaders`.
const RESPONSE_HEADERS: u32 = 2;
/// `MapType::HttpCallResponseHeaders`.
const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
/// `BufferType::PluginConfiguration`.
const PLUGIN_CONFIGURATION: u32 = 7;
/// `MetricType::Counter`.
const COUNTER: u32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message: *const u8, message_size: usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name: *const u8,
        name_size: usize,
        id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key: *const u8, key_size: usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32;
    fn proxy_http_call(
        upstream: *const u8,
        upstream_size: usize,
        headers: *const u8,
        headers_size: usize,
        body: *const u8,
        body_size: usize,
        trailers: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        token: *mut u32,
    ) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
        cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
}

/// Gives the host `size` bytes to fill (`proxy_on_memory_allocate`): the buffer of a
/// `Vec<u8>` of exactly that capacity, which [`take_host_buffer`] takes back.
pub fn allocate_for_host(size: usize) -> *mut u8 {
    let mut buffer = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(size));
    buffer.as_mut_ptr()
}

/// Takes ownership of a buffer the host allocated through `proxy_on_memory_allocate`.
fn take_host_buffer(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    // SAFETY: the host filled a buffer of [`allocate_for_host`] (a `Vec<u8>` with a
    // capacity of exactly `size`) and hands ownership to us.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

/// Writes `message` to Envoy's log at proxy-wasm `level` (0 trace … 5 critical).
pub fn log(level: u32, message: &str) {
    // SAFETY: plain host call; the message outlives it. A refused log line is dropped.
    let _ = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

/// The plugin's configuration bytes (empty if there are none).
pub fn plugin_configuration() -> Vec<u8> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: plain host call writing to the two out-pointers.
    let code = unsafe {
        proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, usize::MAX, &mut data, &mut size)
    };
    match status(code) {
        Ok(()) => take_host_buffer(data, size),
        Err(_) => Vec::new(),
    }
}

/// Defines (or finds) the counter `name` in Envoy's stats; its id.
pub fn define_counter(name: &str) -> Result<u32, u32> {
    let mut id = 0;
    // SAFETY: plain host call; the name outlives it; the out-pointer is valid.
    status(unsafe { proxy_define_metric(COUNTER, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Adds `n` to the counter `id`.
pub fn increment_counter(id: u32, n: i64) -> Result<(), u32> {
    // SAFETY: plain host call.
    status(unsafe { proxy_increment_metric(id, n) })
}

/// Asks the host to call `proxy_on_tick` of the current root context every `period`.
pub fn set_tick_period(period: std::time::Duration) -> Result<(), u32> {
    let ms = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: plain host call.
    status(unsafe { proxy_set_tick_period_milliseconds(ms) })
}

/// A stream's headers as the host serialized them, in one buffer.
pub struct Headers(Vec<u8>);

impl Headers {
    /// Every request header as raw (name, value) bytes borrowed from the buffer; none
    /// if the host refused or sent a map that does not add up (then there is no `:path`
    /// either, and the request is refused).
    pub fn pairs(&self) -> HeaderPairs<'_> {
        HeaderPairs::new(&self.0).unwrap_or_else(HeaderPairs::empty)
    }
}

/// Reads every request header in one host call.
pub fn request_headers() -> Headers {
    header_map(REQUEST_HEADERS)
}

/// Reads every response header in one host call.
pub fn response_headers() -> Headers {
    header_map(RESPONSE_HEADERS)
}

fn header_map(map_type: u32) -> Headers {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: plain host call writing to the two out-pointers.
    let status = unsafe { proxy_get_header_map_pairs(map_type, &mut data, &mut size) };
    if status != STATUS_OK {
        return Headers(Vec::new());
    }
    Headers(take_host_buffer(data, size))
}

/// True if the response has a header named `name` (one lookup, no copy of the map).
pub fn has_response_header(name: &[u8]) -> bool {
    header_value(RESPONSE_HEADERS, name).is_some()
}

/// The status of the answer to a dispatched call (in `proxy_on_http_call_response`);
/// `None` if the call got no answer (a reset, a timeout: no `:status`).
pub fn http_call_status() -> Option<u32> {
    let value = header_value(HTTP_CALL_RESPONSE_HEADERS, b":status")?;
    std::str::from_utf8(&value).ok()?.parse().ok()
}

fn header_value(map_type: u32, name: &[u8]) -> Option<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: plain host call; the name outlives it; out-pointers are valid.
    let code = unsafe {
        proxy_get_header_map_value(map_type, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    status(code).ok()?;
    Some(take_host_buffer(data, size))
}

/// Removes every response header named `name`.
pub fn remove_response_header(name: &[u8]) -> Result<(), u32> {
    // SAFETY: plain host call; the name outlives it.
    status(unsafe { proxy_remove_header_map_value(RESPONSE_HEADERS, name.as_ptr(), name.len()) })
}

/// Adds a response header `name` with `value`, beside any header of that name.
pub fn add_response_header(name: &[u8], value: &[u8]) -> Result<(), u32> {
    // SAFETY: plain host call; name and value outlive it.
    status(unsafe {
        proxy_add_header_map_value(
            RESPONSE_HEADERS,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Sends a request to the cluster `upstream` without waiting: its answer comes to the
/// current root context's `proxy_on_http_call_response` with the returned token.
pub fn dispatch_http_call(
    upstream: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout_ms: u32,
) -> Result<u32, u32> {
    let headers = serialize_header_map(headers);
    let trailers = serialize_header_map::<&str, &str>(&[]);
    let mut token = 0;
    // SAFETY: plain host call; every buffer outlives it; the out-pointer is valid.
    status(unsafe {
        proxy_http_call(
            upstream.as_ptr(),
            upstream.len(),
            headers.as_ptr(),
            headers.len(),
            body.as_ptr(),
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            timeout_ms,
            &mut token,
        )
    })?;
    Ok(token)
}

/// A host call's status, as a `Result`.
fn status(code: u32) -> Result<(), u32> {
    if code == STATUS_OK {
        Ok(())
    } else {
        Err(code)
    }
}

/// Removes every request header named `name` (the host compares without case).
pub fn remove_request_header(name: &[u8]) -> Result<(), u32> {
    // SAFETY: plain host call; the name outlives it.
    status(unsafe { proxy_remove_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len()) })
}

/// Adds a request header `name` with `value`, beside any header of that name.
pub fn add_request_header(name: &[u8], value: &[u8]) -> Result<(), u32> {
    // SAFETY: plain host call; name and value outlive it.
    status(unsafe {
        proxy_add_header_map_value(
            REQUEST_HEADERS,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Answers the request locally with `status_code`, `headers` and `body`.
pub fn send_local_response(
    status_code: u32,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), u32> {
    let headers = serialize_header_map(headers);
    // SAFETY: plain host call; every buffer outlives it.
    status(unsafe {
        proxy_send_local_response(
            status_code,
            EDGE_REPLY_DETAILS.as_ptr(),
            EDGE_REPLY_DETAILS.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// The host's clock, unix milliseconds; `None` if the host refuses.
pub fn now_ms() -> Option<u64> {
    let mut nanos = 0;
    // SAFETY: plain host call writing to the out-pointer.
    status(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) }).ok()?;
    Some(nanos / 1_000_000)
}

/// A property of the stream (e.g. `["source", "address"]`); `None` if absent or refused.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    let serialized = path.join("\0");
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: plain host call; the path outlives it; out-pointers are valid.
    let code =
        unsafe { proxy_get_property(serialized.as_ptr(), serialized.len(), &mut data, &mut size) };
    status(code).ok()?;
    Some(take_host_buffer(data, size))
}

/// Proxy-wasm shared data, shared by every worker's VM of this plugin.
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        let (mut data, mut size, mut cas) = (null_mut(), 0, 0);
        // SAFETY: plain host call; the key outlives it; out-pointers are valid.
        let status = unsafe {
            proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas)
        };
        match status {
            STATUS_OK => Some((take_host_buffer(data, size), cas)),
            STATUS_NOT_FOUND => None,
            _ => None,
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        // SAFETY: plain host call; key and value outlive it.
        let status = unsafe {
            proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
        };
        match status {
            STATUS_OK => Ok(()),
            STATUS_CAS_MISMATCH => Err(StoreError::CasMismatch),
            _ => Err(StoreError::Other),
        }
    }
}
