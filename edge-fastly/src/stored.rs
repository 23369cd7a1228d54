//! A value of the core's shared store as a cache object keeps it: a version (the
//! compare-and-swap token, 4 bytes big-endian, never 0) and the value.

/// `version` and `value`, as stored.
pub fn encode(version: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + value.len());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// The value and its version; `None` for bytes this adapter did not write (too short,
/// or version 0).
pub fn decode(stored: &[u8]) -> Option<(Vec<u8>, u32)> {
    let version = u32::from_be_bytes(stored.get(..4)?.try_into().ok()?);
    (version != 0).then(|| (stored[4..].to_vec(), version))
}

/// The version written after `current` (none: the key was never set).
pub fn next_version(current: Option<u32>) -> u32 {
    current.unwrap_or(0).wrapping_add(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_comes_back_with_its_version() {
        assert_eq!(decode(&encode(7, b"bucket")), Some((b"bucket".to_vec(), 7)));
        assert_eq!(decode(&encode(1, b"")), Some((Vec::new(), 1)));
    }

    #[test]
    fn bytes_not_written_here_are_no_value() {
        assert_eq!(decode(b"abc"), None);
        assert_eq!(decode(&encode(0, b"x")), None);
    }

    #[test]
    fn versions_never_repeat_the_current_one_nor_reach_zero() {
        assert_eq!(next_version(None), 1);
        assert_eq!(next_version(Some(1)), 2);
        assert_eq!(next_version(Some(u32::MAX)), 1);
    }
}
