//! Finding the pass among the request's cookies.
//!
//! Browsers send one `cookie` header, HTTP/2 clients may split it into several, and
//! a visitor can hold two cookies of the same name (different paths or domains).
//! Every value of the named cookie is a candidate, up to [`MAX_CANDIDATES`]; anything
//! beyond that is ignored so that a request stuffed with cookies costs bounded work.

/// Most pass candidates verified per request.
pub const MAX_CANDIDATES: usize = 4;

/// The values of cookie `name` found in the given `cookie` header values, in order.
pub fn find<'a>(headers: &[&'a [u8]], name: &[u8]) -> Vec<&'a [u8]> {
    let mut found = Vec::new();
    for header in headers {
        for pair in header.split(|&b| b == b';') {
            let pair = trim(pair);
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if trim(&pair[..eq]) != name {
                continue;
            }
            found.push(unquote(trim(&pair[eq + 1..])));
            if found.len() == MAX_CANDIDATES {
                return found;
            }
        }
    }
    found
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn unquote(s: &[u8]) -> &[u8] {
    match s {
        [b'"', inner @ .., b'"'] => inner,
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_value_in_every_header() {
        let a: &[u8] = b"theme=dark; wr_pass=AAA;x=1";
        let b: &[u8] = b" wr_pass = \"BBB\" ;wr_passx=no";
        assert_eq!(find(&[a, b], b"wr_pass"), vec![&b"AAA"[..], b"BBB"]);
    }

    #[test]
    fn bounded_and_robust() {
        let many = "wr_pass=x;".repeat(100);
        assert_eq!(find(&[many.as_bytes()], b"wr_pass").len(), MAX_CANDIDATES);
        let garbage: &[u8] = b"\xff\x00;;=;wr_pass;=wr_pass;\"";
        assert!(find(&[garbage], b"wr_pass").is_empty());
        assert_eq!(find(&[b"wr_pass="], b"wr_pass"), vec![&b""[..]]);
        assert_eq!(find(&[b"wr_pass=\""], b"wr_pass"), vec![&b"\""[..]]);
    }
}
