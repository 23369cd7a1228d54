//! A deliberately raw HTTP/1.1 client: it sends exactly the bytes a test gives it
//! (duplicate headers, huge values, non-UTF-8), one request per connection.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// First header value by (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The JSON error code, if the body is the product's error shape.
    pub fn error_code(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v["error"]["code"].as_str().map(str::to_owned)
    }
}

/// Sends `raw` (a complete request that asks for `Connection: close`) and reads the
/// response until the server closes. Bounded by a 10 s timeout.
pub fn send_raw(addr: SocketAddr, raw: &[u8]) -> Result<Response> {
    send_raw_from(None, addr, raw)
}

/// Same, from the local address `from` (any of 127.0.0.0/8 reaches a loopback server,
/// which then sees a client of that address); `None`: the kernel's choice.
pub fn send_raw_from(from: Option<IpAddr>, addr: SocketAddr, raw: &[u8]) -> Result<Response> {
    let mut stream = match from {
        None => TcpStream::connect_timeout(&addr, Duration::from_secs(5))?,
        Some(ip) => {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                None,
            )?;
            socket.bind(&SocketAddr::new(ip, 0).into())?;
            socket.connect_timeout(&addr.into(), Duration::from_secs(5))?;
            socket.into()
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(raw)?;
    // Read until the response is complete rather than until the server closes: Envoy
    // delays closing after a local reply (`delayed_close_timeout`, 1 s).
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if is_complete(&bytes) {
            break;
        }
        let n = stream.read(&mut chunk).context("read response")?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    parse(&bytes)
}

/// True once a whole response (head and, by Content-Length or chunked end, body) is in.
fn is_complete(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let body = &bytes[end + 4..];
    for line in head.split("\r\n") {
        if let Some(v) = line.strip_prefix("content-length:") {
            return v.trim().parse::<usize>().is_ok_and(|n| body.len() >= n);
        }
        if line.starts_with("transfer-encoding:") && line.contains("chunked") {
            return body.ends_with(b"0\r\n\r\n");
        }
    }
    false
}

/// One kept-alive HTTP/1.1 connection: requests go one after another on it, as a
/// browser's do. An error (the server closed, a timeout) is the caller's to count.
pub struct KeepAlive {
    stream: TcpStream,
}

impl KeepAlive {
    /// Connects (5 s at most); reads and writes are bounded by 10 s.
    pub fn connect(addr: SocketAddr) -> Result<KeepAlive> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(KeepAlive { stream })
    }

    /// Sends `raw` (one whole request that keeps the connection) and reads its response.
    pub fn send(&mut self, raw: &[u8]) -> Result<Response> {
        self.stream.write_all(raw)?;
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        while !is_complete(&bytes) {
            let n = self.stream.read(&mut chunk).context("read response")?;
            if n == 0 {
                bail!("the server closed the connection");
            }
            bytes.extend_from_slice(&chunk[..n]);
        }
        parse(&bytes)
    }
}

/// A GET with the given extra headers (values as raw bytes).
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &[u8])]) -> Result<Response> {
    request(addr, "GET", path, headers, b"")
}

/// Where a test sends its requests: a socket address, or a router in-process
/// ([`crate::in_process::InProcessRouter`]). Both answer with the same [`Response`].
pub trait Target: Copy {
    /// Any method, with headers and a body.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> Result<Response>;

    /// A GET.
    fn get(&self, path: &str, headers: &[(&str, &[u8])]) -> Result<Response> {
        self.request("GET", path, headers, b"")
    }
}

impl Target for SocketAddr {
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> Result<Response> {
        request(*self, method, path, headers, body)
    }
}

/// Any method, with headers and a body (Content-Length is sent unless a bodiless GET).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Result<Response> {
    send_raw(addr, &raw_request(addr, method, path, headers, body))
}

/// A GET sent from the local address `from` (see [`send_raw_from`]).
pub fn get_from(
    from: IpAddr,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &[u8])],
) -> Result<Response> {
    request_from(from, addr, "GET", path, headers, b"")
}

/// A request sent from the local address `from` (see [`send_raw_from`]).
pub fn request_from(
    from: IpAddr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Result<Response> {
    send_raw_from(
        Some(from),
        addr,
        &raw_request(addr, method, path, headers, body),
    )
}

/// The bytes of a request that asks for `Connection: close`.
fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Vec<u8> {
    let mut raw =
        format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n").into_bytes();
    for (name, value) in headers {
        raw.extend_from_slice(name.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(value);
        raw.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || method != "GET" {
        raw.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    raw
}

impl Response {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

fn parse(bytes: &[u8]) -> Result<Response> {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!(
            "no complete response head in {} bytes: {:?}",
            bytes.len(),
            String::from_utf8_lossy(bytes)
        );
    };
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .parse()
        .context("status")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = bytes[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}
