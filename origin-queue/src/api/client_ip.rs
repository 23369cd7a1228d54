//! The client's address, for per-client limits.
//!
//! The TCP peer, unless the peer is a configured trusted proxy (`WR_TRUSTED_PROXIES`,
//! e.g. the local Envoy): then the right-most `X-Forwarded-For` entry that is not itself
//! a trusted proxy. A client cannot choose its address by sending the header directly.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// The address to limit on.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn only_trusted_peers_may_forward() {
        let envoy: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.9".parse().unwrap();
        let h = headers("6.6.6.6, 203.0.113.5");
        assert_eq!(client_ip(other, &h, &[envoy]), other);
        assert_eq!(
            client_ip(envoy, &h, &[envoy]),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(envoy, &headers("203.0.113.5, 127.0.0.1"), &[envoy]),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(envoy, &HeaderMap::new(), &[envoy]), envoy);
    }
}
