//! Little-endian 64-bit words read from bytes: the two keys of a derived secret, bucket
//! state, and the eight-bytes-at-a-time scans of the hot path.

/// The little-endian word of the first eight bytes of `bytes`, zero-padded if there are
/// fewer.
pub fn le_u64(bytes: &[u8]) -> u64 {
    // Eight bytes or more (every word of the hot path's scans): one load.
    if let Some(word) = bytes.first_chunk::<8>() {
        return u64::from_le_bytes(*word);
    }
    let mut word = [0u8; 8];
    for (w, b) in word.iter_mut().zip(bytes) {
        *w = *b;
    }
    u64::from_le_bytes(word)
}

/// The two 64-bit keys of a 32-byte derived secret (its first sixteen bytes), for a
/// keyed hash.
pub fn key_pair(secret: &[u8; 32]) -> (u64, u64) {
    (le_u64(&secret[..8]), le_u64(&secret[8..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_zero_padded() {
        assert_eq!(le_u64(&[1, 2]), 0x0201);
        assert_eq!(le_u64(&[]), 0);
        assert_eq!(le_u64(&[1, 0, 0, 0, 0, 0, 0, 0, 9]), 1);
    }
}
