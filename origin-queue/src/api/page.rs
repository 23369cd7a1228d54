//! The waiting-room page: one self-contained HTML document (no external assets) that
//! joins, shows the live position, ETA, confidence and progress, waits `Retry-After` on
//! 429/503, and moves on to `return_to` by itself once admitted.

use axum::extract::{Path, Query};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use wr_pass::validate_event_id;

use super::error::ApiError;

const TEMPLATE: &str = include_str!("page/waiting_room.html");
/// The proof-of-work solver of the JavaScript package (one source for both), which the
/// page runs in a Web Worker.
const POW_SOLVER: &str = include_str!("../../../edge-js/js/pow.js");

/// The solver as a classic script for a worker: the module's `export`s dropped.
fn pow_solver_script() -> String {
    POW_SOLVER.replace("\nexport function ", "\nfunction ")
}

/// Query of the page.
#[derive(Deserialize)]
pub struct PageQuery {
    return_to: Option<String>,
    /// `ended` when the edge sent the visitor here because the backend ended their
    /// session ([`wr_pass::wire::SESSION_ENDED_QUERY`]): the page says so and does not
    /// join the line by itself.
    session: Option<String>,
    /// `revoked` when the edge sent the visitor here because their pass was revoked
    /// ([`wr_pass::wire::PASS_REVOKED_QUERY`]): the page says so and joins again.
    pass: Option<String>,
}

/// A local path to go back to: starts with one `/`, no backslash or control
/// characters, at most 2 KiB. Anything else becomes `/` (no open redirects).
pub fn safe_return_to(candidate: Option<&str>) -> String {
    match candidate {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && p.len() <= 2048
                && !p.chars().any(|c| c == '\\' || c.is_control()) =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn escape_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;")
}

/// The page's `data-session`: `ended` or nothing (no other text reaches the page).
fn session_state(query: Option<&str>) -> &'static str {
    let ended = wr_pass::wire::SESSION_ENDED_QUERY.trim_start_matches("session=");
    if query == Some(ended) {
        "ended"
    } else {
        ""
    }
}

/// The page's `data-pass`: `revoked` or nothing (no other text reaches the page).
fn pass_state(query: Option<&str>) -> &'static str {
    let revoked = wr_pass::wire::PASS_REVOKED_QUERY.trim_start_matches("pass=");
    if query == Some(revoked) {
        "revoked"
    } else {
        ""
    }
}

/// `GET /waiting-room/{event}?return_to=…[&session=ended][&pass=revoked]`
pub async fn waiting_room(
    Path(event): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    validate_event_id(&event).map_err(|e| ApiError::BadEventId(e.to_string()))?;
    let return_to = safe_return_to(query.return_to.as_deref());
    let html = TEMPLATE
        .replace("__EVENTS_PREFIX__", wr_pass::wire::EVENTS_PREFIX)
        .replace("__EVENT__", &event)
        .replace("__RETURN_TO__", &escape_attribute(&return_to))
        .replace("__SESSION__", session_state(query.session.as_deref()))
        .replace("__PASS__", pass_state(query.pass.as_deref()))
        .replace("__POW_SOLVER__", &pow_solver_script());
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; worker-src blob:; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_come_back() {
        assert_eq!(safe_return_to(Some("/reserve?x=1")), "/reserve?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "",
            "evil",
            "/a\nb",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_to(None), "/");
    }

    #[test]
    fn the_solver_is_a_classic_script_without_a_closing_tag() {
        let script = pow_solver_script();
        assert!(script.contains("function solveChallenge("));
        assert!(!script.contains("export "));
        assert!(!script.to_ascii_lowercase().contains("</script"));
    }

    #[test]
    fn attributes_are_escaped() {
        assert_eq!(
            escape_attribute("/a?b=\"<x>\"&c='d'"),
            "/a?b=&quot;&lt;x&gt;&quot;&amp;c=&#39;d&#39;"
        );
    }
}
