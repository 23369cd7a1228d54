//! Proof of work at join: the puzzle, its check, and a reference solver.
//!
//! A **challenge** is a token of kind [`TokenKind::Challenge`](crate::TokenKind) signed by
//! origin-queue. Its claims name the event, the visitor the place will belong to, when it
//! expires, its difficulty and a random salt, so handing one out costs no storage.
//!
//! A **solution** is the challenge, a colon and a decimal nonce:
//!
//! ```text
//! c1.<key id>.<claims>.<mac>:<nonce>
//! ```
//!
//! It is good when the SHA-256 of those exact bytes starts with at least `difficulty`
//! zero bits. Finding one takes about 2^difficulty hashes; checking it takes one.

use sha2::{Digest, Sha256};

use crate::claims::{Claims, Extension};

/// Smallest difficulty an event may ask (leading zero bits).
pub const MIN_DIFFICULTY: u8 = 1;
/// Largest difficulty an event may ask: 2^28 hashes is minutes on a phone.
pub const MAX_DIFFICULTY: u8 = 28;
/// How long a challenge may be solved and used, seconds.
pub const CHALLENGE_TTL_SECS: u64 = 600;
/// The algorithm's name, as the API states it.
pub const ALGORITHM: &str = "sha256-leading-zero-bits";
/// Longest nonce, in decimal digits (a `u64`).
const MAX_NONCE_DIGITS: usize = 20;
/// Claim extension tags of a challenge.
const TAG_DIFFICULTY: u8 = 1;
const TAG_SALT: u8 = 2;
/// Bytes of random salt in a challenge: what makes each one single-use.
pub const SALT_BYTES: usize = 16;

/// A challenge's claims, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Leading zero bits a solution must have.
    pub difficulty: u8,
    /// Random bytes: two challenges never share a solution, and a used solution is
    /// remembered by its salt.
    pub salt: [u8; SALT_BYTES],
}

impl Challenge {
    /// The claims of a challenge for `visitor` of `event`, issued at `now` (unix
    /// seconds), valid for [`CHALLENGE_TTL_SECS`].
    pub fn claims(&self, event: &str, visitor: &str, now: u64) -> Claims {
        let mut claims = Claims::new(event, visitor, now, now + CHALLENGE_TTL_SECS);
        claims.extensions = vec![
            Extension {
                tag: TAG_DIFFICULTY,
                value: vec![self.difficulty],
            },
            Extension {
                tag: TAG_SALT,
                value: self.salt.to_vec(),
            },
        ];
        claims
    }

    /// Reads the challenge from verified claims; `None` if they are not a challenge's
    /// (no difficulty or salt, or a difficulty out of range).
    pub fn from_claims(claims: &Claims) -> Option<Challenge> {
        let find = |tag| claims.extensions.iter().find(|e| e.tag == tag);
        let difficulty = match find(TAG_DIFFICULTY)?.value.as_slice() {
            [d] if (MIN_DIFFICULTY..=MAX_DIFFICULTY).contains(d) => *d,
            _ => return None,
        };
        let salt = find(TAG_SALT)?.value.as_slice().try_into().ok()?;
        Some(Challenge { difficulty, salt })
    }
}

/// A solution taken apart: the challenge token and the nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Solution<'a> {
    /// The challenge token, as handed out.
    pub challenge: &'a str,
    /// The whole solution, the bytes that are hashed.
    pub text: &'a str,
}

impl<'a> Solution<'a> {
    /// Splits `text` at its last colon; `None` unless it ends in 1–20 decimal digits
    /// after a non-empty challenge.
    pub fn parse(text: &'a str) -> Option<Solution<'a>> {
        let (challenge, nonce) = text.rsplit_once(':')?;
        let digits = !nonce.is_empty()
            && nonce.len() <= MAX_NONCE_DIGITS
            && nonce.bytes().all(|b| b.is_ascii_digit());
        (digits && !challenge.is_empty()).then_some(Solution { challenge, text })
    }

    /// The leading zero bits of the solution's SHA-256: the work it shows.
    pub fn work(&self) -> u32 {
        leading_zero_bits(&Sha256::digest(self.text.as_bytes()))
    }
}

/// Leading zero bits of `bytes`.
pub fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut bits = 0;
    for &b in bytes {
        if b != 0 {
            return bits + b.leading_zeros();
        }
        bits += 8;
    }
    bits
}

/// The reference solver: the first nonce, counting from 0, whose solution has at least
/// `difficulty` leading zero bits; returns the whole solution. About 2^difficulty
/// hashes (difficulty is at most [`MAX_DIFFICULTY`], so this ends).
pub fn solve(challenge: &str, difficulty: u8) -> String {
    let difficulty = u32::from(difficulty.min(MAX_DIFFICULTY));
    let mut prefix = Sha256::new();
    prefix.update(challenge.as_bytes());
    prefix.update(b":");
    let mut digits = itoa_buffer();
    for nonce in 0u64.. {
        let text = write_decimal(&mut digits, nonce);
        let digest = prefix.clone().chain_update(text).finalize();
        if leading_zero_bits(&digest) >= difficulty {
            return format!("{challenge}:{nonce}");
        }
    }
    unreachable!("a u64 of nonces always holds a solution")
}

fn itoa_buffer() -> [u8; MAX_NONCE_DIGITS] {
    [0; MAX_NONCE_DIGITS]
}

/// `n` in decimal, in `buf`'s tail.
fn write_decimal(buf: &mut [u8; MAX_NONCE_DIGITS], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zero_bits_count_across_bytes() {
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0x00, 0x10]), 11);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn the_solver_finds_a_solution_with_the_work_asked() {
        for difficulty in [1, 8, 12] {
            let text = solve("c1.k.abc.def", difficulty);
            let solution = Solution::parse(&text).unwrap();
            assert_eq!(solution.challenge, "c1.k.abc.def");
            assert!(solution.work() >= u32::from(difficulty));
        }
    }

    #[test]
    fn only_a_challenge_colon_digits_is_a_solution() {
        for bad in [
            "",
            "abc",
            "abc:",
            ":12",
            "abc:1x",
            "abc:-1",
            "abc:123456789012345678901",
        ] {
            assert_eq!(Solution::parse(bad), None, "{bad:?}");
        }
        assert!(Solution::parse("a:b:7").is_some_and(|s| s.challenge == "a:b"));
    }

    #[test]
    fn claims_carry_difficulty_and_salt() {
        let c = Challenge {
            difficulty: 18,
            salt: [7; SALT_BYTES],
        };
        let claims = c.claims("e", "v", 100);
        assert_eq!(claims.expires_at, 100 + CHALLENGE_TTL_SECS);
        assert_eq!(Challenge::from_claims(&claims), Some(c));
    }

    #[test]
    fn a_difficulty_out_of_range_is_not_a_challenge() {
        for d in [0, MAX_DIFFICULTY + 1] {
            let mut claims = Challenge {
                difficulty: 4,
                salt: [1; SALT_BYTES],
            }
            .claims("e", "v", 1);
            claims.extensions[0].value = vec![d];
            assert_eq!(Challenge::from_claims(&claims), None);
        }
    }

    #[test]
    fn decimals_are_written_exactly() {
        let mut buf = itoa_buffer();
        assert_eq!(write_decimal(&mut buf, 0), b"0");
        assert_eq!(write_decimal(&mut buf, u64::MAX), b"18446744073709551615");
    }
}
