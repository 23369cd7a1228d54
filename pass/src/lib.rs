//! The signed tokens of the waiting room: the admission **pass** checked at the edge
//! (`wr_pass`) and the queue **ticket** held by a waiting visitor (`wr_ticket`).
//!
//! One implementation, used by both the proxy-wasm edge filter (wasm32) and
//! origin-queue (native), so the two can never disagree about what is valid.
//!
//! # Format (version 1)
//!
//! ```text
//! p1.<key id>.<claims: base64url>.<HMAC-SHA256: base64url>
//! ```
//!
//! * `p1` names the kind and version (`p1` pass, `t1` ticket, `c1` a proof-of-work
//!   challenge, see [`pow`]). It is signed, so a
//!   ticket can never be presented as a pass.
//! * the key id selects the secret in the [`KeyRing`], so keys rotate with no downtime;
//! * the claims are a small binary record (see [`Claims`]), base64url without padding;
//! * the MAC covers the exact text before the last dot: what is parsed is what was signed.
//!
//! Every character is in `[A-Za-z0-9_.-]`, safe in a cookie value and in a URL.
//! Verification never allocates JSON, checks the MAC in constant time before decoding
//! the claims, and reports a typed [`Rejection`] for every failure.

mod claims;
mod ids;
mod keyring;
pub mod pow;
mod token;
mod validity;
pub mod wire;

pub use claims::{Claims, Extension, MAX_EXTENSIONS};
pub use ids::{validate_event_id, validate_key_id, validate_visitor_id};
pub use keyring::{KeyRing, KeyRingError, MIN_SECRET_BYTES};
pub use token::{parse_unverified, MintError, Rejection, TokenKind, Unverified, MAX_TOKEN_LEN};
pub use validity::Validity;
pub use wire::Wire;
