//! Who the client is, for rate limiting: the connection's peer address.
//!
//! The address comes from Envoy's `source.address` attribute, never from a request
//! header. Envoy itself replaces it with an `X-Forwarded-For` entry only when the
//! operator configured trusted proxy hops in the HTTP connection manager
//! (`xff_num_trusted_hops`, Istio's `numTrustedProxies`); that is the one place to say
//! how many proxies in front are trusted.
//!
//! IPv6 clients are grouped by /64, the block one subscriber usually holds, so that
//! rotating addresses within it does not multiply a client's allowance.

use std::net::{IpAddr, SocketAddr};

/// The rate-limit identity of a peer: 4 bytes (IPv4), 8 bytes (IPv6 /64), or the raw
/// attribute text when it is not an IP address (e.g. a unix socket path).
pub fn client_key(source_address: Option<&[u8]>) -> Vec<u8> {
    let Some(raw) = source_address else {
        return b"unknown".to_vec();
    };
    let text = std::str::from_utf8(raw).unwrap_or("");
    let ip = text
        .parse::<SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| text.parse::<IpAddr>());
    match ip {
        Ok(IpAddr::V4(v4)) => v4.octets().to_vec(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets()[..8].to_vec(),
        },
        Err(_) => raw.iter().take(128).copied().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(client_key(Some(b"127.0.0.1:5555")), vec![127, 0, 0, 1]);
        assert_eq!(client_key(Some(b"10.1.2.3")), vec![10, 1, 2, 3]);
        assert_eq!(client_key(Some(b"[::ffff:10.1.2.3]:80")), vec![10, 1, 2, 3]);
        let a = client_key(Some(b"[2001:db8:1:2:aaaa::1]:443"));
        let b = client_key(Some(b"[2001:db8:1:2:bbbb::9]:443"));
        assert_eq!(a, b);
        assert_eq!(a.len(), 8);
        assert_eq!(client_key(None), b"unknown");
        assert_eq!(client_key(Some(b"\xff\xfe")), b"\xff\xfe");
    }
}
