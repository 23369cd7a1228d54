//! What the adapter reads from Fastly: the client request as received (its raw path,
//! its headers, the client address the platform established) and the settings from the
//! Config Store and the Secret Store.

use std::net::IpAddr;

use fastly::config_store::ConfigStore;
use fastly::handle::{client_request_and_body, RequestHandle};
use fastly::secret_store::SecretStore;
use fastly::Request;

use crate::settings::{Settings, CONFIG_STORE, SECRET_STORE};
use crate::url::path_of;

/// The longest request URL read (Fastly's own limit is 8 KiB).
const MAX_URL_BYTES: usize = 16 * 1024;

/// The client request, with what the core needs that the SDK's `Request` does not keep
/// as received.
pub struct ClientRequest {
    /// The request, to forward as it is (its URL is never rewritten).
    pub request: Request,
    /// The path and query exactly as the client sent them (`None` if the host gave no
    /// URL the adapter can read: the core then refuses the request).
    pub raw_path: Option<String>,
    /// The client address as the platform established it (never a header).
    pub client: Option<IpAddr>,
}

/// Takes the client request from the host.
pub fn client_request() -> ClientRequest {
    let (handle, body) = client_request_and_body();
    let raw_path = raw_url(&handle).as_deref().and_then(path_of);
    let client = handle.client_ip_addr();
    ClientRequest {
        request: Request::from_handles(handle, Some(body)),
        raw_path,
        client,
    }
}

/// The URL as the host holds it. The SDK's own reader parses it into a `Url`, which
/// resolves `.` and `..` segments (also `%2e`): the core would judge another path than
/// the one the origin receives. The core judges the URL as sent and refuses those.
fn raw_url(handle: &RequestHandle) -> Option<String> {
    let mut buffer = vec![0u8; MAX_URL_BYTES];
    let mut written = 0usize;
    // SAFETY: the host writes at most `buffer.len()` bytes into `buffer` and says how
    // many in `written`; the handle is the live client request's.
    let status = unsafe {
        fastly_sys::fastly_http_req::uri_get(
            handle.as_u32(),
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut written,
        )
    };
    if status.is_err() || written > buffer.len() {
        return None;
    }
    buffer.truncate(written);
    String::from_utf8(buffer).ok()
}

/// The header pairs the core reads: `:path` (as received) first, then every header as
/// the SDK holds it (lower-case names, each value of a repeated header).
pub fn core_headers(raw_path: Option<&str>, request: &Request) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw_path
        .map(|p| (b":path".to_vec(), p.as_bytes().to_vec()))
        .into_iter()
        .chain(
            request.get_headers().map(|(name, value)| {
                (name.as_str().as_bytes().to_vec(), value.as_bytes().to_vec())
            }),
        )
        .collect()
}

/// Reads the settings from the stores; every problem in words.
pub fn settings() -> Result<Settings, Vec<String>> {
    let config = ConfigStore::try_open(CONFIG_STORE)
        .map_err(|e| format!("the Config Store {CONFIG_STORE} cannot be opened: {e}"));
    let secrets = SecretStore::open(SECRET_STORE)
        .map_err(|e| format!("the Secret Store {SECRET_STORE} cannot be opened: {e}"));
    Settings::from_stores(
        |key| match &config {
            Ok(store) => store
                .try_get(key)
                .map_err(|e| format!("{CONFIG_STORE}.{key} cannot be read: {e}")),
            Err(why) => Err(why.clone()),
        },
        |key| match &secrets {
            // Only the lookup's kind is named, never the value.
            Ok(store) => store
                .try_get(key)
                .map(|secret| secret.map(|s| s.plaintext().to_vec()))
                .map_err(|e| format!("{SECRET_STORE}.{key} cannot be read: {e}")),
            Err(why) => Err(why.clone()),
        },
        now_ms() / 1000,
    )
}

/// Unix milliseconds by the host's clock (0 without one: every pass then looks expired,
/// failing closed).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
