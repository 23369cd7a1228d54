//! Proof of work at join: handing out challenges and checking solutions (the puzzle
//! itself is `wr_pass::pow`). A challenge is signed, not stored: it costs no Redis
//! write until a join spends its solution (`join.lua` records it, once).

use axum::http::HeaderMap;
use rand::Rng;
use wr_pass::pow::{Challenge, Solution, CHALLENGE_TTL_SECS, SALT_BYTES};
use wr_pass::wire::POW_HEADER;
use wr_pass::{Rejection, TokenKind, Validity};

use super::error::ApiError;
use super::tickets::Tickets;
use crate::store::Work;

/// A challenge as the API hands it out (in a `403 POW_REQUIRED` answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedChallenge {
    /// The challenge token: solve it and send `<challenge>:<nonce>` in [`POW_HEADER`].
    pub challenge: String,
    /// Leading zero bits the solution's SHA-256 must have.
    pub difficulty: u8,
    /// Unix seconds after which a solution is refused.
    pub expires_at: u64,
}

/// A solution that checked out: the work it shows and whose place it is.
#[derive(Debug, PartialEq, Eq)]
pub struct Solved {
    /// The visitor the challenge was handed to.
    pub visitor: String,
    /// The work, single-use by the challenge's salt.
    pub work: Work,
}

impl Tickets {
    /// A new challenge for `visitor` of `event` at `difficulty`, issued at `now` (unix
    /// seconds).
    pub fn challenge(
        &self,
        event: &str,
        visitor: &str,
        difficulty: u8,
        now: u64,
    ) -> Result<IssuedChallenge, ApiError> {
        let salt: [u8; SALT_BYTES] = rand::rng().random();
        let claims = Challenge { difficulty, salt }.claims(event, visitor, now);
        Ok(IssuedChallenge {
            challenge: self.mint(TokenKind::Challenge, &claims)?,
            difficulty,
            expires_at: now + CHALLENGE_TTL_SECS,
        })
    }

    /// The solution the request carries in [`POW_HEADER`], checked: `None` without
    /// one; `400 POW_INVALID` for one that is malformed, forged, of another event or
    /// short of its own challenge's work, `403 POW_EXPIRED` for an expired challenge.
    /// Whether it is enough for the event now, and unused, is `join.lua`'s to say.
    pub fn solution(
        &self,
        headers: &HeaderMap,
        event: &str,
        now: u64,
    ) -> Result<Option<Solved>, ApiError> {
        let Some(value) = headers.get(POW_HEADER) else {
            return Ok(None);
        };
        let invalid = |why: &str| ApiError::PowInvalid(why.to_owned());
        let text = value.to_str().map_err(|_| invalid("not printable text"))?;
        let solution = Solution::parse(text)
            .ok_or_else(|| invalid("not a challenge, a colon and a decimal nonce"))?;
        let validity = Validity::at(now, self.wire.clock_skew_seconds);
        let claims = self
            .keys
            .verify(
                TokenKind::Challenge,
                solution.challenge.as_bytes(),
                validity,
                Some(event),
            )
            .map_err(|reason| match reason {
                Rejection::Expired => ApiError::PowExpired,
                Rejection::WrongEvent => invalid("the challenge is for another event"),
                other => ApiError::PowInvalid(format!("the challenge is not valid ({other})")),
            })?;
        let challenge = Challenge::from_claims(&claims)
            .ok_or_else(|| invalid("the token is not a challenge"))?;
        if solution.work() < u32::from(challenge.difficulty) {
            return Err(invalid("the nonce does not solve the challenge"));
        }
        Ok(Some(Solved {
            visitor: claims.visitor,
            work: Work::Solved {
                difficulty: challenge.difficulty,
                salt_hex: challenge.salt.iter().map(|b| format!("{b:02x}")).collect(),
            },
        }))
    }
}
