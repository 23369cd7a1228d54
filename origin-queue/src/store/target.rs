//! Where Redis Cluster is and how to reach it: the seed nodes, plain or TLS
//! (`rediss://`, for managed Redis with encryption in transit such as ElastiCache), the
//! CA to trust, and the AUTH user and password.
//!
//! Secrets never travel in a node's URL: a `user:password@` part is refused, so that the
//! nodes can be printed in messages as they are; the password comes from its own
//! setting and is never printed ([`RedisTarget`]'s `Debug` leaves it out).

use redis::cluster::ClusterClientBuilder;
use redis::TlsCertificates;

/// Seed nodes and how to talk to them.
#[derive(Clone)]
pub struct RedisTarget {
    /// `redis://host:port` or `rediss://host:port`, one scheme for all.
    nodes: Vec<String>,
    /// PEM certificates to trust instead of the system's roots (`rediss://` only).
    ca_pem: Option<Vec<u8>>,
    username: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("nodes", &self.nodes)
            .field("tls", &self.tls())
            .field("own_ca", &self.ca_pem.is_some())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl RedisTarget {
    /// Reads seed nodes given as `host:port` (plain), `redis://host:port` or
    /// `rediss://host:port` (TLS). All must use the same scheme; a path, a query or a
    /// `user:password@` part is refused.
    pub fn from_nodes<S: AsRef<str>>(nodes: &[S]) -> Result<RedisTarget, String> {
        let mut urls = Vec::new();
        let mut schemes = Vec::new();
        for node in nodes
            .iter()
            .map(|n| n.as_ref().trim())
            .filter(|n| !n.is_empty())
        {
            // First, before anything may echo the node: a user or password in it.
            if node.contains('@') {
                return Err(format!(
                    "{:?}: no user or password in a node's address; use WR_REDIS_USERNAME \
                     and WR_REDIS_PASSWORD",
                    shown(node)
                ));
            }
            let (scheme, rest) = match node.split_once("://") {
                Some((scheme @ ("redis" | "rediss"), rest)) => (scheme, rest),
                Some((other, _)) => {
                    return Err(format!(
                        "{:?}: the scheme {other:?} is not redis:// or rediss://",
                        shown(node)
                    ))
                }
                None => ("redis", node),
            };
            let valid_host_port = rest.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !valid_host_port || rest.contains(['/', '?', '#', ' ']) {
                return Err(format!(
                    "{:?} is not host:port (or redis[s]://host:port)",
                    shown(node)
                ));
            }
            if !schemes.contains(&scheme) {
                schemes.push(scheme);
            }
            urls.push(format!("{scheme}://{rest}"));
        }
        if urls.is_empty() {
            return Err("no nodes listed".into());
        }
        if schemes.len() > 1 {
            return Err("mixes redis:// and rediss:// nodes: a cluster is all TLS or none".into());
        }
        Ok(RedisTarget {
            nodes: urls,
            ca_pem: None,
            username: None,
            password: None,
        })
    }

    /// Trusts the CA certificates of `pem` (instead of the system's roots). Refused for
    /// plain nodes, and for text without a certificate.
    pub fn with_ca_pem(mut self, pem: Vec<u8>) -> Result<RedisTarget, String> {
        if !self.tls() {
            return Err("a CA is set but the nodes are not rediss:// (TLS)".into());
        }
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
        }
        self.ca_pem = Some(pem);
        Ok(self)
    }

    /// Authenticates as `username` (Redis ACL user; none: the default user) with
    /// `password`. A user without a password is refused: Redis would not be asked to
    /// authenticate at all, and the connection would run as the default user.
    pub fn with_auth(
        mut self,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<Self, String> {
        self.username = username.filter(|u| !u.is_empty());
        self.password = password.filter(|p| !p.is_empty());
        if self.username.is_some() && self.password.is_none() {
            return Err("a user is set but no password (WR_REDIS_PASSWORD)".into());
        }
        Ok(self)
    }

    /// Whether the nodes are reached over TLS.
    pub fn tls(&self) -> bool {
        self.nodes.iter().all(|n| n.starts_with("rediss://"))
    }

    /// The seed nodes' URLs (no secret in them).
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// A client builder for these nodes, with TLS and AUTH as set.
    pub fn builder(&self) -> ClusterClientBuilder {
        let mut builder = ClusterClientBuilder::new(self.nodes.clone());
        if let Some(pem) = &self.ca_pem {
            builder = builder.certs(TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            });
        }
        if let Some(username) = &self.username {
            builder = builder.username(username.clone());
        }
        if let Some(password) = &self.password {
            builder = builder.password(password.clone());
        }
        builder
    }
}

/// What of a refused node a message may show: never anything before an `@` (where a
/// user and password would be) nor a query or fragment (where a token might be).
fn shown(node: &str) -> &str {
    let after_credentials = node.rsplit_once('@').map_or(node, |(_, host)| host);
    after_credentials
        .split(['?', '#'])
        .next()
        .unwrap_or(after_credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_nodes_are_plain_redis() {
        let target = RedisTarget::from_nodes(&["127.0.0.1:7000", " redis://h:7001 "]).unwrap();
        assert_eq!(target.nodes(), ["redis://127.0.0.1:7000", "redis://h:7001"]);
        assert!(!target.tls());
    }

    #[test]
    fn rediss_nodes_are_tls() {
        let target = RedisTarget::from_nodes(&["rediss://a.cache.amazonaws.com:6379"]).unwrap();
        assert!(target.tls());
    }

    #[test]
    fn mixed_schemes_are_refused() {
        let e = RedisTarget::from_nodes(&["rediss://a:1", "b:2"]).unwrap_err();
        assert!(e.contains("mixes"), "{e}");
    }

    #[test]
    fn a_password_in_a_url_is_refused_without_printing_it() {
        let e = RedisTarget::from_nodes(&["rediss://user:hunter2@h:6379"]).unwrap_err();
        assert!(
            e.contains("WR_REDIS_PASSWORD") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn no_refusal_prints_a_password() {
        for node in [
            "valkeys://default:s3cret@h:6379",
            "REDISS://u:s3cret@h:6379",
            "rediss://app:s3@cret@h:6379",
            "u:s3cret@h:6379",
            "redis://h:6379?password=s3cret",
            "redis://h:6379#s3cret",
        ] {
            let e = RedisTarget::from_nodes(&[node]).unwrap_err();
            assert!(!e.contains("s3") && !e.contains("cret"), "{node}: {e}");
        }
    }

    #[test]
    fn a_user_without_a_password_is_refused() {
        let target = RedisTarget::from_nodes(&["h:1"]).unwrap();
        let e = target
            .clone()
            .with_auth(Some("app".into()), None)
            .unwrap_err();
        assert!(e.contains("WR_REDIS_PASSWORD"), "{e}");
        assert!(target.with_auth(None, Some("pw".into())).is_ok());
    }

    #[test]
    fn malformed_nodes_are_refused() {
        for bad in [
            "h",
            "h:0",
            "h:99999",
            ":1",
            "http://h:1",
            "redis://h:1/0",
            "redis://h:1?x",
        ] {
            assert!(RedisTarget::from_nodes(&[bad]).is_err(), "{bad}");
        }
        assert!(RedisTarget::from_nodes::<&str>(&[]).is_err());
        assert!(RedisTarget::from_nodes(&[" ", ""]).is_err());
    }

    #[test]
    fn a_ca_needs_tls_and_a_certificate() {
        let plain = RedisTarget::from_nodes(&["h:1"]).unwrap();
        assert!(plain
            .with_ca_pem(b"-----BEGIN CERTIFICATE-----".to_vec())
            .is_err());
        let tls = RedisTarget::from_nodes(&["rediss://h:1"]).unwrap();
        assert!(tls.clone().with_ca_pem(b"not a pem".to_vec()).is_err());
        assert!(tls
            .with_ca_pem(b"-----BEGIN CERTIFICATE-----\n".to_vec())
            .is_ok());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let target = RedisTarget::from_nodes(&["h:1"])
            .unwrap()
            .with_auth(Some("app".into()), Some("hunter2".into()))
            .unwrap();
        let shown = format!("{target:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<set>"),
            "{shown}"
        );
    }
}
