//! Local replies: what the filter answers instead of forwarding.

/// An answer sent by the filter itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u32,
    /// Response headers.
    pub headers: Vec<(&'static str, String)>,
    /// Response body.
    pub body: String,
}

/// A JSON error in the product's shape: `{"error":{"code":…,"message":…}}`, plus the
/// waiting-room path when there is one. `code`, `message` and `waiting_room` must not
/// need JSON escaping (they are constants or validated ids).
pub fn json_error(
    status: u32,
    code: &str,
    message: &str,
    retry_after_secs: Option<u32>,
    waiting_room: Option<&str>,
) -> LocalReply {
    let mut body = format!(r#"{{"error":{{"code":"{code}","message":"{message}""#);
    if let Some(path) = waiting_room {
        body.push_str(&format!(r#","waiting_room":"{path}""#));
    }
    body.push_str("}}");
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("cache-control", "no-store".to_owned()),
    ];
    if let Some(secs) = retry_after_secs {
        headers.push(("retry-after", secs.to_string()));
    }
    LocalReply {
        status,
        headers,
        body,
    }
}

/// The 429 of every rate limit: `RATE_LIMITED` with `Retry-After` (also for a runtime's
/// own limiter put in front of the decision, so that every limit answers alike).
pub fn too_many_requests(retry_after_secs: u32) -> LocalReply {
    json_error(
        429,
        "RATE_LIMITED",
        "Too many requests: retry later.",
        Some(retry_after_secs.max(1)),
        None,
    )
}

/// The answer of an adapter whose settings are missing or broken (it logs why): fail
/// closed.
pub fn not_configured() -> LocalReply {
    json_error(
        503,
        "EDGE_NOT_CONFIGURED",
        "The edge is not configured.",
        Some(5),
        None,
    )
}

/// The answer when the edge cannot do its job for a request (its host refused what it
/// needed): fail closed.
pub fn unavailable() -> LocalReply {
    json_error(
        503,
        "EDGE_UNAVAILABLE",
        "The edge could not process the request.",
        Some(5),
        None,
    )
}

/// The answer of an adapter that fronts the origin itself when the origin (or
/// origin-queue) could not be reached.
pub fn origin_unreachable() -> LocalReply {
    json_error(
        502,
        "ORIGIN_UNREACHABLE",
        "The origin could not be reached.",
        Some(5),
        None,
    )
}

/// A 302 to the waiting room (which may carry a query already), remembering where the
/// visitor was going.
pub fn redirect(waiting_room: &str, return_to: &[u8]) -> LocalReply {
    let mut location = waiting_room.to_owned();
    // Only ever a local path; very long ones are dropped rather than truncated.
    if return_to.len() <= 1024 && return_to.first() == Some(&b'/') {
        location.push(if location.contains('?') { '&' } else { '?' });
        location.push_str("return_to=");
        percent_encode_into(return_to, &mut location);
    }
    LocalReply {
        status: 302,
        headers: vec![
            ("location", location),
            ("cache-control", "no-store".to_owned()),
        ],
        body: String::new(),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `/`.
fn percent_encode_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let r = json_error(
            403,
            "PASS_EXPIRED",
            "expired",
            Some(5),
            Some("/waiting-room/e"),
        );
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["error"]["code"], "PASS_EXPIRED");
        assert_eq!(v["error"]["waiting_room"], "/waiting-room/e");
        assert!(r.headers.contains(&("retry-after", "5".into())));
    }

    #[test]
    fn redirect_encodes_return_to() {
        let r = redirect("/waiting-room/e", b"/reserve?a=1&b=\"x\"");
        assert_eq!(
            r.headers[0].1,
            "/waiting-room/e?return_to=/reserve%3Fa%3D1%26b%3D%22x%22"
        );
        let r = redirect("/waiting-room/e", "/x".repeat(600).as_bytes());
        assert_eq!(r.headers[0].1, "/waiting-room/e");
    }
}
