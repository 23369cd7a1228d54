//! The proxy-wasm ABI's serialized header map, parsed without trusting its sizes.

/// The (name, value) pairs of the ABI's serialized header map (count, (name size,
/// value size) pairs, then each name and value followed by a NUL), borrowed from the
/// bytes: read one by one, with nothing allocated.
#[derive(Clone, Debug)]
pub struct HeaderPairs<'a> {
    bytes: &'a [u8],
    next: usize,
    count: usize,
    data_at: usize,
}

impl<'a> HeaderPairs<'a> {
    /// The pairs of `bytes`; `None` if the sizes do not add up (checked here, for the
    /// whole map, before any pair is read).
    pub fn new(bytes: &'a [u8]) -> Option<HeaderPairs<'a>> {
        if bytes.is_empty() {
            return Some(HeaderPairs::empty());
        }
        let count = word(bytes, 0)?;
        let data_at = count.checked_mul(8)?.checked_add(4)?;
        let mut end = data_at;
        for i in 0..count {
            for size in [word(bytes, 4 + i * 8)?, word(bytes, 8 + i * 8)?] {
                end = end.checked_add(size)?.checked_add(1)?;
            }
        }
        if end > bytes.len() {
            return None;
        }
        Some(HeaderPairs {
            bytes,
            next: 0,
            count,
            data_at,
        })
    }

    /// No pairs at all.
    pub fn empty() -> HeaderPairs<'a> {
        HeaderPairs {
            bytes: &[],
            next: 0,
            count: 0,
            data_at: 0,
        }
    }

    fn field(&mut self, size: usize) -> Option<&'a [u8]> {
        let end = self.data_at.checked_add(size)?;
        let value = self.bytes.get(self.data_at..end)?;
        self.data_at = end.checked_add(1)?;
        Some(value)
    }
}

impl<'a> Iterator for HeaderPairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.count {
            return None;
        }
        let at = 4 + self.next * 8;
        self.next += 1;
        let name = self.field(word(self.bytes, at)?)?;
        let value = self.field(word(self.bytes, at + 4)?)?;
        Some((name, value))
    }
}

/// The little-endian `u32` at `at`, if the bytes reach that far.
fn word(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// Parses the whole map into a list; `None` if the bytes do not add up.
pub fn parse_header_map(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    Some(HeaderPairs::new(bytes)?.collect())
}

/// Serializes (name, value) pairs the way the ABI does (what a host hands a filter).
pub fn serialize_header_map<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (n, v) in pairs {
        out.extend_from_slice(&(n.as_ref().len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.as_ref().len() as u32).to_le_bytes());
    }
    for (n, v) in pairs {
        out.extend_from_slice(n.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_binary_values() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":path", b"/x"), (b"cookie", b"\xff\x00a")];
        let bytes = serialize_header_map(&pairs);
        let parsed = parse_header_map(&bytes).unwrap();
        assert_eq!(parsed[1], (&b"cookie"[..], &b"\xff\x00a"[..]));
    }

    #[test]
    fn lies_about_sizes_are_refused() {
        let mut bytes = serialize_header_map(&[(b"a", b"b")]);
        bytes[0] = 200;
        assert_eq!(parse_header_map(&bytes), None);
        let mut bytes = serialize_header_map(&[(b"a", b"b")]);
        bytes[8] = 0xff;
        assert_eq!(parse_header_map(&bytes), None);
        assert_eq!(parse_header_map(&[1, 0]), None);
        assert_eq!(parse_header_map(&[0xff, 0xff, 0xff, 0xff]), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_header_map(&bytes);
        }
    }
}
