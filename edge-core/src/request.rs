//! What the filter reads from one request's headers: read once, in order, borrowed
//! from the runtime's buffer, with nothing allocated unless a client sent a spelling of
//! a header only the filter may set.

use wr_pass::wire::TICKET_HEADER;

/// Header values of one name, borrowed from the request: inline up to four (a request
/// has one or none of each), so reading a request allocates nothing.
pub type Values<'a> = smallvec::SmallVec<[&'a [u8]; 4]>;

/// The client headers the filter reads (besides `:path`), by lower-case name: none of
/// them can be an identity header, which the filter sets and strips.
pub const READ_HEADERS: [&str; 3] = [ACCEPT, COOKIE, TICKET_HEADER];
const ACCEPT: &str = "accept";
const COOKIE: &str = "cookie";
const HOST: &str = "host";

/// What the filter needs from one request.
#[derive(Debug, Default)]
pub struct Request<'a> {
    /// `:path`, if present.
    pub path: Option<&'a [u8]>,
    /// Every `accept` header value.
    pub accept: Values<'a>,
    /// Every `cookie` header value.
    pub cookies: Values<'a>,
    /// Every `x-wr-ticket` header value (origin-queue's ticket, for non-browser clients).
    pub ticket_headers: Values<'a>,
    /// Envoy's `source.address` attribute (peer address, or the address Envoy derived
    /// from trusted proxy hops), never a client header.
    pub source_address: Option<&'a [u8]>,
    /// Names, as sent, of client headers that spell a header the edge strips (see
    /// [`same_header_name`]).
    pub spoofed: Vec<&'a [u8]>,
    /// Bytes of every header's name and value, pseudo-headers included.
    pub header_bytes: usize,
    /// True if the request names its host in a way no server can route: an empty
    /// `:authority` or `Host`, more than one `Host`, or a list of hosts (a `,`: what a
    /// proxy makes of duplicated `Host` headers). A request without either header is not
    /// judged here (a runtime may keep the host apart from the headers).
    pub bad_authority: bool,
}

impl<'a> Request<'a> {
    /// Gathers the inputs from the request's (name, value) pairs, read once, in order
    /// (names compared without case; the proxy-wasm filter reads them straight from the
    /// host's buffer). `owned` are the headers the edge strips: any header that spells
    /// one of them is listed in `spoofed`.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        source_address: Option<&'a [u8]>,
        owned: &[&str],
    ) -> Self {
        let mut request = Request {
            source_address,
            ..Request::default()
        };
        // Every header of every request comes through here: a name is only compared
        // with the names of its length.
        let is = |name: &[u8], wanted: &str| {
            name.len() == wanted.len() && name.eq_ignore_ascii_case(wanted.as_bytes())
        };
        let mut host_seen = false;
        for (name, value) in pairs {
            request.header_bytes = request
                .header_bytes
                .saturating_add(name.len() + value.len());
            if name.len() == 5 && name == b":path" {
                request.path.get_or_insert(value);
            } else if name.len() == 10 && name == b":authority" {
                request.bad_authority |= !is_one_host(value);
            } else if is(name, HOST) {
                request.bad_authority |= !is_one_host(value) || host_seen;
                host_seen = true;
            } else if is(name, ACCEPT) {
                request.accept.push(value);
            } else if is(name, COOKIE) {
                request.cookies.push(value);
            } else if is(name, TICKET_HEADER) {
                request.ticket_headers.push(value);
            } else if owned
                .iter()
                .any(|o| o.len() == name.len() && same_header_name(name, o))
            {
                request.spoofed.push(name);
            }
        }
        request
    }

    /// True if an `accept` value asks for HTML (a browser: it is redirected, not
    /// refused).
    pub fn wants_html(&self) -> bool {
        self.accept
            .iter()
            .any(|v| v.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
    }
}

/// True if an `:authority` or `Host` value names one host: not empty, not a list.
fn is_one_host(value: &[u8]) -> bool {
    !value.trim_ascii().is_empty() && !value.contains(&b',')
}

/// True if a sent header name is read as `owned` (a lower-case name with `-`) by some
/// server: compared without case, with `_` read as `-` (CGI, WSGI, PHP, nginx with
/// `underscores_in_headers`, and others fold `_` into `-`).
pub fn same_header_name(sent: &[u8], owned: &str) -> bool {
    sent.len() == owned.len()
        && sent.iter().zip(owned.bytes()).all(|(&s, o)| {
            let s = if s == b'_' {
                b'-'
            } else {
                s.to_ascii_lowercase()
            };
            s == o
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_without_case_and_owned_spellings_are_listed() {
        let pairs: [(&[u8], &[u8]); 5] = [
            (b":path", b"/reserve"),
            (b"Cookie", b"a=1"),
            (b"cookie", b"b=2"),
            (b"X_WR_Visitor", b"mallory"),
            (b"x-other", b"kept"),
        ];
        let request = Request::from_pairs(pairs, None, &["x-wr-visitor"]);
        assert_eq!(request.path, Some(&b"/reserve"[..]));
        assert_eq!(request.cookies.as_slice(), [&b"a=1"[..], b"b=2"]);
        assert_eq!(request.spoofed, [&b"X_WR_Visitor"[..]]);
        assert!(!request.bad_authority, "no host at all is not judged");
    }

    #[test]
    fn an_empty_listed_or_repeated_host_is_a_bad_authority() {
        let bad = |pairs: &[(&[u8], &[u8])]| {
            Request::from_pairs(pairs.iter().copied(), None, &[]).bad_authority
        };
        assert!(!bad(&[(b":authority", b"shop.example")]));
        assert!(!bad(&[(b"Host", b"shop.example:8080")]));
        assert!(bad(&[(b":authority", b"")]));
        assert!(bad(&[(b"host", b" ")]));
        assert!(bad(&[(b":authority", b"a,b")]));
        assert!(bad(&[(b"host", b"a"), (b"HOST", b"a")]));
    }
}
