//! Syntax of the identifiers carried in tokens and URLs.

/// Checks an event id: 1–64 characters of `[a-z0-9_-]`, starting with a letter or digit.
/// Event ids appear in URL paths and cookie scopes, so they are deliberately narrow.
pub fn validate_event_id(id: &str) -> Result<(), &'static str> {
    check(id, 64, |b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
    })?;
    if !id.as_bytes()[0].is_ascii_alphanumeric() {
        return Err("must start with a letter or a digit");
    }
    Ok(())
}

/// Checks a visitor id: 1–64 characters of `[A-Za-z0-9_-]` (base64url alphabet).
pub fn validate_visitor_id(id: &str) -> Result<(), &'static str> {
    check(id, 64, is_url_safe)
}

/// Checks a key id: 1–32 characters of `[A-Za-z0-9_-]`.
pub fn validate_key_id(id: &str) -> Result<(), &'static str> {
    check(id, 32, is_url_safe)
}

fn is_url_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn check(id: &str, max: usize, allowed: impl Fn(u8) -> bool) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("must not be empty");
    }
    if id.len() > max {
        return Err("is too long");
    }
    if !id.bytes().all(allowed) {
        return Err("contains a character outside the allowed set");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids() {
        assert!(validate_event_id("concert-2026_a").is_ok());
        assert!(validate_event_id("").is_err());
        assert!(validate_event_id("-x").is_err());
        assert!(validate_event_id("Concert").is_err());
        assert!(validate_event_id("a/b").is_err());
        assert!(validate_event_id(&"a".repeat(65)).is_err());
        assert!(validate_event_id(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn visitor_and_key_ids() {
        assert!(validate_visitor_id("AbC-_09").is_ok());
        assert!(validate_visitor_id("a.b").is_err());
        assert!(validate_key_id(&"k".repeat(33)).is_err());
        assert!(validate_key_id("k2").is_ok());
    }
}
