//! One client's token bucket as shared data keeps it: 24 bytes under a key of its
//! namespace and slot. [`crate::rate_limit`] decides what to do with it.

use crate::words::le_u64;

/// Encoded size: fingerprint, micro-tokens, last refill (ms), each a little-endian u64.
const STATE_LEN: usize = 24;
/// Every bucket's key is this, the namespace, `:` and the slot number.
const KEY_PREFIX: &str = "wr:rl:";

/// A bucket's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// The fingerprint of the client that last held the slot.
    pub fingerprint: u64,
    /// Tokens left, in millionths of a token.
    pub micro_tokens: u64,
    /// When the bucket was last refilled, unix milliseconds.
    pub last_ms: u64,
}

impl Bucket {
    /// The bucket stored as `bytes`; `None` unless they are exactly one bucket.
    pub fn decode(bytes: &[u8]) -> Option<Bucket> {
        let bytes: &[u8; STATE_LEN] = bytes.try_into().ok()?;
        Some(Bucket {
            fingerprint: le_u64(&bytes[..8]),
            micro_tokens: le_u64(&bytes[8..16]),
            last_ms: le_u64(&bytes[16..]),
        })
    }

    /// The bytes to store.
    pub fn encode(&self) -> [u8; STATE_LEN] {
        let mut out = [0u8; STATE_LEN];
        out[..8].copy_from_slice(&self.fingerprint.to_le_bytes());
        out[8..16].copy_from_slice(&self.micro_tokens.to_le_bytes());
        out[16..].copy_from_slice(&self.last_ms.to_le_bytes());
        out
    }
}

/// The shared-data key of `slot` in `namespace`, e.g. `wr:rl:visitor:17`.
///
/// Built by hand: with `format!`, a new visitor's draw cost Envoy about 1,100 more
/// instructions (`bench-edge -- --count`, distinct passes, two runs on one machine).
pub(crate) fn key(namespace: &str, slot: u64) -> String {
    let mut key = String::with_capacity(KEY_PREFIX.len() + namespace.len() + 21);
    key.push_str(KEY_PREFIX);
    key.push_str(namespace);
    key.push(':');
    push_decimal(&mut key, slot);
    key
}

/// Appends `n` in decimal.
pub(crate) fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_reads_back_as_it_was_written() {
        let bucket = Bucket {
            fingerprint: u64::MAX - 1,
            micro_tokens: 7_000_000,
            last_ms: 1_700_000_000_123,
        };
        assert_eq!(Bucket::decode(&bucket.encode()), Some(bucket));
    }

    #[test]
    fn bytes_of_any_other_length_are_no_bucket() {
        let bytes = [0u8; STATE_LEN + 1];
        assert_eq!(Bucket::decode(&bytes[..STATE_LEN - 1]), None);
        assert_eq!(Bucket::decode(&bytes), None);
        assert_eq!(Bucket::decode(&[]), None);
    }

    #[test]
    fn keys_name_the_namespace_and_the_slot_in_decimal() {
        for slot in [0, 7, 10, 3_999_999_999, u64::MAX] {
            assert_eq!(key("client", slot), format!("wr:rl:client:{slot}"));
        }
    }
}
