//! Finding the pass among the request's cookies.
//!
//! Browsers send one `cookie` header, HTTP/2 clients may split it into several, and
//! a visitor can hold two cookies of the same name (different paths or domains).
//! Every value of the named cookie is a candidate, up to [`MAX_CANDIDATES`]; anything
//! beyond that is ignored so that a request stuffed with cookies costs bounded work.

/// Most pass candidates verified per request.
pub const MAX_CANDIDATES: usize = 4;

use crate::words::le_u64;

/// Cookie values found, held inline (there are at most [`MAX_CANDIDATES`]).
pub type Candidates<'a> = smallvec::SmallVec<[&'a [u8]; MAX_CANDIDATES]>;

/// The values of cookie `name` found in the given `cookie` header values, in order.
pub fn find<'a>(headers: &[&'a [u8]], name: &[u8]) -> Candidates<'a> {
    let mut found = Candidates::new();
    for header in headers {
        let mut rest: &'a [u8] = header;
        loop {
            let end = find_byte(rest, b';').unwrap_or(rest.len());
            let pair = trim(&rest[..end]);
            if let Some(eq) = pair.iter().position(|&b| b == b'=') {
                if trim(&pair[..eq]) == name {
                    found.push(unquote(trim(&pair[eq + 1..])));
                    if found.len() == MAX_CANDIDATES {
                        return found;
                    }
                }
            }
            match rest.get(end + 1..) {
                Some(next) => rest = next,
                None => break,
            }
        }
    }
    found
}

/// The index of the first `byte` in `haystack`, eight bytes at a time: a cookie header
/// is mostly one long token, and finding where it ends is most of what reading the
/// pass costs.
fn find_byte(haystack: &[u8], byte: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(byte);
    let mut chunks = haystack.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let x = le_u64(chunk) ^ pattern;
        // The lowest high bit set marks the first zero byte of `x` (bits above it
        // may be false alarms; it never is).
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = chunks.remainder().iter().position(|&b| b == byte)?;
    Some(at + tail)
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
        assert_eq!(
            find(&[a, b], b"wr_pass").to_vec(),
            vec![&b"AAA"[..], b"BBB"]
        );
    }

    #[test]
    fn bounded_and_robust() {
        let many = "wr_pass=x;".repeat(100);
        assert_eq!(find(&[many.as_bytes()], b"wr_pass").len(), MAX_CANDIDATES);
        let garbage: &[u8] = b"\xff\x00;;=;wr_pass;=wr_pass;\"";
        assert!(find(&[garbage], b"wr_pass").is_empty());
        assert_eq!(find(&[b"wr_pass="], b"wr_pass").to_vec(), vec![&b""[..]]);
        assert_eq!(
            find(&[b"wr_pass=\""], b"wr_pass").to_vec(),
            vec![&b"\""[..]]
        );
    }
}
