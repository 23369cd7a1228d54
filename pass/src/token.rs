//! Minting and verifying tokens.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;

use crate::claims::Claims;
use crate::ids::validate_key_id;
use crate::keyring::{HmacSha256, KeyRing};
use crate::validity::Validity;

/// Longest token accepted, in bytes. Real tokens are about 130 bytes.
pub const MAX_TOKEN_LEN: usize = 512;
/// HMAC-SHA256 output size.
const MAC_LEN: usize = 32;

/// What a token is for. The kind is part of the signed text, so one kind can never be
/// accepted as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// `wr_pass`: admission, checked at the edge on every protected request.
    Pass,
    /// `wr_ticket`: a visitor's place in an event's line, checked by origin-queue.
    Ticket,
    /// A proof-of-work puzzle handed out by origin-queue (see [`crate::pow`]): it names
    /// the event, the visitor the place will belong to and the difficulty, so it costs
    /// no storage until it is solved.
    Challenge,
}

impl TokenKind {
    /// The versioned prefix that starts tokens of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Pass => "p1",
            TokenKind::Ticket => "t1",
            TokenKind::Challenge => "c1",
        }
    }

    fn from_prefix(prefix: &str) -> Option<TokenKind> {
        match prefix {
            "p1" => Some(TokenKind::Pass),
            "t1" => Some(TokenKind::Ticket),
            "c1" => Some(TokenKind::Challenge),
            _ => None,
        }
    }
}

/// Why a token was refused. Each reason is distinct so that callers can count them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not a token of the expected shape (wrong length, characters, encoding or record).
    Malformed,
    /// A token of another kind or of a version this build does not know.
    UnsupportedVersion,
    /// Signed with a key id the ring does not hold.
    UnknownKey,
    /// The MAC does not match: forged or altered.
    BadSignature,
    /// Past its expiry, beyond the clock-skew leeway.
    Expired,
    /// Issued in the future, beyond the clock-skew leeway.
    NotYetValid,
    /// Valid, but for another event.
    WrongEvent,
    /// Validly signed, but valid for longer (expiry − issue time) than the verifier
    /// accepts: minted by mistake, or with a leaked key.
    LifetimeTooLong,
    /// Issued before the event's cut ("not before"): the operator revoked every pass of
    /// the event issued until then.
    Revoked,
}

impl Rejection {
    /// Stable machine-readable name, used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::UnsupportedVersion => "unsupported_version",
            Rejection::UnknownKey => "unknown_key",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::WrongEvent => "wrong_event",
            Rejection::LifetimeTooLong => "lifetime_too_long",
            Rejection::Revoked => "revoked",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Rejection {}

/// Why a token could not be minted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MintError(pub String);

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot mint token: {}", self.0)
    }
}

impl std::error::Error for MintError {}

/// The four dot-separated parts of a token, checked for shape only.
struct Parts<'a> {
    kind: TokenKind,
    key_id: &'a str,
    claims_b64: &'a str,
    mac_b64: &'a str,
    /// The signed text: everything before the last dot.
    signed: &'a str,
}

fn split(token: &[u8]) -> Result<Parts<'_>, Rejection> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Rejection::Malformed);
    }
    let text = std::str::from_utf8(token).map_err(|_| Rejection::Malformed)?;
    let mut fields = text.split('.');
    let (Some(prefix), Some(key_id), Some(claims_b64), Some(mac_b64), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(Rejection::Malformed);
    };
    let kind = TokenKind::from_prefix(prefix).ok_or(Rejection::UnsupportedVersion)?;
    validate_key_id(key_id).map_err(|_| Rejection::Malformed)?;
    if claims_b64.is_empty() || mac_b64.is_empty() {
        return Err(Rejection::Malformed);
    }
    let signed = &text[..text.len() - mac_b64.len() - 1];
    Ok(Parts {
        kind,
        key_id,
        claims_b64,
        mac_b64,
        signed,
    })
}

fn decode_claims(claims_b64: &str) -> Result<Claims, Rejection> {
    let mut buf = [0u8; MAX_TOKEN_LEN];
    let n = URL_SAFE_NO_PAD
        .decode_slice(claims_b64, &mut buf)
        .map_err(|_| Rejection::Malformed)?;
    Claims::decode(&buf[..n]).ok_or(Rejection::Malformed)
}

/// A token whose structure and claims were decoded but whose signature was **not**
/// checked. For display (`origin-queue pass inspect`) only: never trust its claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unverified {
    /// Kind named by the prefix.
    pub kind: TokenKind,
    /// Key id named in the token.
    pub key_id: String,
    /// Claims, or why they could not be decoded.
    pub claims: Result<Claims, Rejection>,
}

/// Decodes a token without checking its signature. Never panics on any input.
pub fn parse_unverified(token: &[u8]) -> Result<Unverified, Rejection> {
    let parts = split(token)?;
    Ok(Unverified {
        kind: parts.kind,
        key_id: parts.key_id.to_owned(),
        claims: decode_claims(parts.claims_b64),
    })
}

fn mac_b64(mut mac: HmacSha256, signed: &str) -> String {
    mac.update(signed.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

impl KeyRing {
    /// Signs `claims` with the active key.
    pub fn mint(&self, kind: TokenKind, claims: &Claims) -> Result<String, MintError> {
        claims.validate().map_err(MintError)?;
        let (key_id, mac) = self.active_mac();
        let mut token = format!(
            "{}.{}.{}",
            kind.prefix(),
            key_id,
            URL_SAFE_NO_PAD.encode(claims.encode())
        );
        let sig = mac_b64(mac, &token);
        token.push('.');
        token.push_str(&sig);
        if token.len() > MAX_TOKEN_LEN {
            return Err(MintError(format!(
                "token longer than {MAX_TOKEN_LEN} bytes"
            )));
        }
        Ok(token)
    }

    /// Checks a token completely: shape, kind, key, signature (constant time), claims,
    /// lifetime and validity window (see [`Validity`]), and — if given — the event.
    /// Never panics on any input.
    pub fn verify(
        &self,
        kind: TokenKind,
        token: &[u8],
        validity: Validity,
        expected_event: Option<&str>,
    ) -> Result<Claims, Rejection> {
        let claims = self.verify_signature(kind, token)?;
        validity.check(&claims, expected_event)?;
        Ok(claims)
    }

    /// Checks shape, kind, key and signature, and decodes the claims, without looking
    /// at the time or the event.
    pub fn verify_signature(&self, kind: TokenKind, token: &[u8]) -> Result<Claims, Rejection> {
        let parts = split(token)?;
        if parts.kind != kind {
            return Err(Rejection::UnsupportedVersion);
        }
        let mut mac = self.mac_for(parts.key_id).ok_or(Rejection::UnknownKey)?;
        let mut given = [0u8; MAC_LEN + 3];
        let n = URL_SAFE_NO_PAD
            .decode_slice(parts.mac_b64, &mut given)
            .map_err(|_| Rejection::Malformed)?;
        if n != MAC_LEN {
            return Err(Rejection::Malformed);
        }
        mac.update(parts.signed.as_bytes());
        // `verify_slice` compares in constant time.
        mac.verify_slice(&given[..n])
            .map_err(|_| Rejection::BadSignature)?;
        decode_claims(parts.claims_b64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Extension;

    fn ring(active: &str) -> KeyRing {
        // Two distinct 32-byte secrets: bytes 0..32 and 32..64.
        let k1 = base64::engine::general_purpose::STANDARD.encode((0u8..32).collect::<Vec<_>>());
        let k2 = base64::engine::general_purpose::STANDARD.encode((32u8..64).collect::<Vec<_>>());
        KeyRing::from_json(&format!(
            r#"{{"active":"{active}","keys":{{"k1":"{k1}","k2":"{k2}"}}}}"#
        ))
        .unwrap()
    }

    fn claims() -> Claims {
        Claims::new("concert", "visitor-1", 1_700_000_000, 1_700_000_600)
    }

    #[test]
    fn known_vector() {
        // Frozen output, cross-checked with Python's hmac/base64/struct modules:
        // if this changes, every pass in the field stops verifying.
        let token = ring("k1").mint(TokenKind::Pass, &claims()).unwrap();
        assert_eq!(
            token,
            "p1.k1.AAAAAGVT8QAAAAAAZVPzWAdjb25jZXJ0CXZpc2l0b3ItMQ.\
             V1JZ15BtnxDsZzR65o4eC7lnv7ZwhbnI7rrJ4PNryjc"
        );
        let verified = ring("k2")
            .verify(
                TokenKind::Pass,
                token.as_bytes(),
                Validity::at(1_700_000_100, 0),
                Some("concert"),
            )
            .unwrap();
        assert_eq!(verified, claims());
    }

    #[test]
    fn hmac_primitive_matches_rfc4231_case_2() {
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn rotation_old_key_still_verifies() {
        let old = ring("k1").mint(TokenKind::Pass, &claims()).unwrap();
        let new = ring("k2").mint(TokenKind::Pass, &claims()).unwrap();
        assert!(new.starts_with("p1.k2."));
        for t in [&old, &new] {
            assert!(ring("k2")
                .verify(
                    TokenKind::Pass,
                    t.as_bytes(),
                    Validity::at(1_700_000_001, 0),
                    None
                )
                .is_ok());
        }
    }

    #[test]
    fn every_rejection_reason() {
        let r = ring("k1");
        let t = r.mint(TokenKind::Pass, &claims()).unwrap();
        let at = |now, leeway, ev| {
            r.verify(TokenKind::Pass, t.as_bytes(), Validity::at(now, leeway), ev)
        };
        assert_eq!(at(1_700_000_600, 0, None), Err(Rejection::Expired));
        assert_eq!(at(1_700_000_629, 30, None).map(|_| ()), Ok(()));
        assert_eq!(at(1_700_000_630, 30, None), Err(Rejection::Expired));
        assert_eq!(at(1_699_999_969, 30, None), Err(Rejection::NotYetValid));
        assert_eq!(at(1_699_999_970, 30, None).map(|_| ()), Ok(()));
        assert_eq!(
            at(1_700_000_001, 0, Some("other")),
            Err(Rejection::WrongEvent)
        );
        let unknown = t.replacen("p1.k1.", "p1.k7.", 1);
        assert_eq!(
            r.verify(
                TokenKind::Pass,
                unknown.as_bytes(),
                Validity::at(0, 0),
                None
            ),
            Err(Rejection::UnknownKey)
        );
        let wrong_key = t.replacen("p1.k1.", "p1.k2.", 1);
        assert_eq!(
            r.verify(
                TokenKind::Pass,
                wrong_key.as_bytes(),
                Validity::at(0, 0),
                None
            ),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            r.verify(TokenKind::Ticket, t.as_bytes(), Validity::at(0, 0), None),
            Err(Rejection::UnsupportedVersion)
        );
        let v9 = t.replacen("p1.", "p9.", 1);
        assert_eq!(
            r.verify(TokenKind::Pass, v9.as_bytes(), Validity::at(0, 0), None),
            Err(Rejection::UnsupportedVersion)
        );
        for bad in [
            "",
            "p1",
            "p1.k1.AA.AA",
            "p1.k1..x",
            "p1.k1.a.b.c",
            "p1.k!.AA.AA",
        ] {
            assert_eq!(
                r.verify(TokenKind::Pass, bad.as_bytes(), Validity::at(0, 0), None),
                Err(Rejection::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            r.verify(TokenKind::Pass, &[0xff; 40], Validity::at(0, 0), None),
            Err(Rejection::Malformed)
        );
    }

    #[test]
    fn lifetimes_beyond_the_bound_are_refused() {
        let r = ring("k1");
        let forever = Claims::new("concert", "visitor-1", 1_700_000_000, u64::MAX);
        let t = r.mint(TokenKind::Pass, &forever).unwrap();
        let now = Validity::at(1_700_000_001, 30);
        assert!(r.verify(TokenKind::Pass, t.as_bytes(), now, None).is_ok());
        assert_eq!(
            r.verify(
                TokenKind::Pass,
                t.as_bytes(),
                now.with_max_lifetime(86_400),
                None
            ),
            Err(Rejection::LifetimeTooLong)
        );
        // claims() lives exactly 600 s: the bound is inclusive.
        let t = r.mint(TokenKind::Pass, &claims()).unwrap();
        for (max, ok) in [(600, true), (599, false)] {
            let verdict = r.verify(
                TokenKind::Pass,
                t.as_bytes(),
                now.with_max_lifetime(max),
                None,
            );
            assert_eq!(verdict.is_ok(), ok, "max {max}");
        }
    }

    #[test]
    fn extensions_survive_and_are_signed() {
        let mut c = claims();
        c.extensions.push(Extension {
            tag: 1,
            value: b"user-42".to_vec(),
        });
        let r = ring("k1");
        let t = r.mint(TokenKind::Ticket, &c).unwrap();
        assert_eq!(
            r.verify(
                TokenKind::Ticket,
                t.as_bytes(),
                Validity::at(1_700_000_001, 0),
                None
            ),
            Ok(c)
        );
    }

    #[test]
    fn mint_refuses_bad_claims() {
        let r = ring("k1");
        assert!(r
            .mint(TokenKind::Pass, &Claims::new("Bad Event", "v", 1, 2))
            .is_err());
        assert!(r
            .mint(TokenKind::Pass, &Claims::new("e", "v", 2, 2))
            .is_err());
    }

    #[test]
    fn inspect_without_keys() {
        let t = ring("k1").mint(TokenKind::Pass, &claims()).unwrap();
        let u = parse_unverified(t.as_bytes()).unwrap();
        assert_eq!(
            (u.kind, u.key_id.as_str(), u.claims),
            (TokenKind::Pass, "k1", Ok(claims()))
        );
    }
}
