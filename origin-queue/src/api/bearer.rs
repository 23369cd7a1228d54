//! The `Authorization: Bearer <token>` credentials of a request.

use axum::http::{header, HeaderMap};

/// The token of an `Authorization: Bearer <token>` header. The scheme is compared
/// without case (`bearer`, `BEARER`: RFC 9110, section 11.1), and one or more spaces
/// may separate it from the token. `None` without such a header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_start_matches(' ').trim_end();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(value: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        bearer_token(&headers).map(str::to_owned)
    }

    #[test]
    fn the_scheme_is_compared_without_case() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR   abc"] {
            assert_eq!(token(value).as_deref(), Some("abc"), "{value}");
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_not_bearer() {
        for value in ["Basic abc", "Bearerabc", "Bearer ", "Bearer", "abc"] {
            assert_eq!(token(value), None, "{value}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
