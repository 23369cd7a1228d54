//! The signed claims of a token, as a compact binary record.
//!
//! ```text
//! issued_at   u64 big-endian, unix seconds
//! expires_at  u64 big-endian, unix seconds
//! event       u8 length + bytes
//! visitor     u8 length + bytes
//! extensions  zero or more of: tag u8 (non-zero, unique), length u8, value
//! ```
//!
//! Extensions leave room for later claims (a user id, a scope) without a new version;
//! a verifier that does not know a tag keeps it but does not act on it.

use crate::ids::{validate_event_id, validate_visitor_id};

/// Most extensions one token may carry.
pub const MAX_EXTENSIONS: usize = 8;

/// An optional, tagged claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// Non-zero tag, unique within a token.
    pub tag: u8,
    /// Up to 255 bytes.
    pub value: Vec<u8>,
}

/// What a token says: who, for which event, and when it is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// The event (queue) this token is scoped to.
    pub event: String,
    /// The visitor id.
    pub visitor: String,
    /// Unix seconds when the token was minted.
    pub issued_at: u64,
    /// Unix seconds after which the token is no longer valid.
    pub expires_at: u64,
    /// Later claims; empty in tokens minted today.
    pub extensions: Vec<Extension>,
}

impl Claims {
    /// Claims with no extensions.
    pub fn new(event: &str, visitor: &str, issued_at: u64, expires_at: u64) -> Self {
        Claims {
            event: event.to_owned(),
            visitor: visitor.to_owned(),
            issued_at,
            expires_at,
            extensions: Vec::new(),
        }
    }

    /// Checks that the claims can be encoded and make sense; returns the first problem.
    pub fn validate(&self) -> Result<(), String> {
        validate_event_id(&self.event).map_err(|e| format!("event id {e}"))?;
        validate_visitor_id(&self.visitor).map_err(|e| format!("visitor id {e}"))?;
        if self.expires_at <= self.issued_at {
            return Err("expiry must be after the issue time".into());
        }
        if self.extensions.len() > MAX_EXTENSIONS {
            return Err(format!("at most {MAX_EXTENSIONS} extensions"));
        }
        for (i, ext) in self.extensions.iter().enumerate() {
            if ext.tag == 0 {
                return Err("extension tag 0 is reserved".into());
            }
            if ext.value.len() > u8::MAX as usize {
                return Err("extension value longer than 255 bytes".into());
            }
            if self.extensions[..i].iter().any(|e| e.tag == ext.tag) {
                return Err(format!("extension tag {} appears twice", ext.tag));
            }
        }
        Ok(())
    }

    /// Encodes valid claims (call [`Claims::validate`] first).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(18 + self.event.len() + self.visitor.len());
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        for field in [&self.event, &self.visitor] {
            out.push(field.len() as u8);
            out.extend_from_slice(field.as_bytes());
        }
        for ext in &self.extensions {
            out.push(ext.tag);
            out.push(ext.value.len() as u8);
            out.extend_from_slice(&ext.value);
        }
        out
    }

    /// Decodes and validates a record; `None` for anything that is not exactly one
    /// well-formed record. Never panics.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Claims> {
        let mut r = Reader(bytes);
        let issued_at = r.u64()?;
        let expires_at = r.u64()?;
        let event = r.short_str()?;
        let visitor = r.short_str()?;
        let mut extensions = Vec::new();
        while !r.0.is_empty() {
            let tag = r.u8()?;
            let len = r.u8()?;
            extensions.push(Extension {
                tag,
                value: r.take(len as usize)?.to_vec(),
            });
        }
        let claims = Claims {
            event,
            visitor,
            issued_at,
            expires_at,
            extensions,
        };
        claims.validate().ok()?;
        Some(claims)
    }
}

/// A cursor over untrusted bytes where every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        let bytes: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(u64::from_be_bytes(bytes))
    }

    fn short_str(&mut self) -> Option<String> {
        let len = self.u8()? as usize;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).ok().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_extensions() {
        let mut c = Claims::new("concert", "v1", 10, 20);
        c.extensions.push(Extension {
            tag: 7,
            value: b"user".to_vec(),
        });
        assert_eq!(Claims::decode(&c.encode()), Some(c));
    }

    #[test]
    fn rejects_truncation_and_trailing_bytes() {
        let bytes = Claims::new("concert", "v1", 10, 20).encode();
        for n in 0..bytes.len() {
            assert_eq!(Claims::decode(&bytes[..n]), None, "prefix of {n} bytes");
        }
        let mut longer = bytes.clone();
        longer.push(9);
        assert_eq!(Claims::decode(&longer), None);
    }

    #[test]
    fn rejects_duplicate_extension_tags_and_bad_times() {
        let mut c = Claims::new("concert", "v1", 10, 20);
        c.extensions.push(Extension {
            tag: 7,
            value: vec![],
        });
        c.extensions.push(Extension {
            tag: 7,
            value: vec![],
        });
        assert!(c.validate().is_err());
        assert_eq!(Claims::decode(&c.encode()), None);
        assert!(Claims::new("concert", "v1", 20, 20).validate().is_err());
    }
}
