//! The proxy-wasm ABI's serialized header map, parsed without trusting its sizes.

/// Parses the ABI's serialized header map: count, (name size, value size) pairs, then
/// each name and value followed by a NUL. `None` if the bytes do not add up.
/// The pairs borrow from `bytes`: one allocation for the list, none per header.
pub fn parse_header_map(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let word = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = word(0)?;
    let mut data_at = count.checked_mul(8)?.checked_add(4)?;
    if data_at > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    for i in 0..count {
        let mut field = |size: usize| -> Option<&[u8]> {
            let end = data_at.checked_add(size)?;
            let value = bytes.get(data_at..end)?;
            data_at = end.checked_add(1)?;
            Some(value)
        };
        let name = field(word(4 + i * 8)?)?;
        let value = field(word(8 + i * 8)?)?;
        pairs.push((name, value));
    }
    Some(pairs)
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
