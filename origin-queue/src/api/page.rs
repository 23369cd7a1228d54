//! The waiting-room page: one self-contained HTML document that joins, shows the live
//! place, wait range, confidence and progress, waits `Retry-After` on 429/503, and moves
//! on to `return_to` by itself once admitted.
//!
//! The page is the event's template (the operator's HTML, see `page_admin`, or the
//! built-in one) with the waiting room's own block in `{{waiting_room}}`, in the
//! visitor's language (`Accept-Language`, see `i18n`). Only the block's script runs
//! (the Content-Security-Policy names its hash).

mod block;
mod check;
mod dangers;
mod i18n;
mod scan;
pub mod template;
#[cfg(test)]
mod template_tests;
mod templates;

use std::sync::{Arc, LazyLock};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use wr_pass::validate_event_id;

pub use templates::{failed_reads, PageTemplates};

use super::error::ApiError;
use template::{Template, Values};

/// The built-in template (its check is a unit test).
static BUILT_IN: LazyLock<Result<Template, Vec<String>>> =
    LazyLock::new(|| Template::parse(include_str!("page/default.html")));

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
    State(templates): State<Arc<PageTemplates>>,
    Path(event): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    validate_event_id(&event).map_err(|e| ApiError::BadEventId(e.to_string()))?;
    let catalog = i18n::negotiate(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let return_to = safe_return_to(query.return_to.as_deref());
    let waiting_room = block::render(&block::Visit {
        event: &event,
        return_to: &return_to,
        session: session_state(query.session.as_deref()),
        pass: pass_state(query.pass.as_deref()),
        catalog,
    });
    let values = Values {
        lang: catalog.lang,
        title: catalog.get("page_title"),
        event: &event,
        waiting_room: &waiting_room,
        place: "…",
        wait: "…",
        state: catalog.get("state_joining"),
    };
    let html = match templates.of(&event).await {
        Some(template) => template.render(&values),
        None => match &*BUILT_IN {
            Ok(template) => template.render(&values),
            Err(problems) => {
                return Err(ApiError::Internal(format!(
                    "the built-in page template is refused: {problems:?}"
                )))
            }
        },
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                block::content_security_policy(),
            ),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::VARY, "Accept-Language"),
            (header::CONTENT_LANGUAGE, catalog.lang),
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
    fn the_built_in_template_passes_its_own_check() {
        let template = BUILT_IN.as_ref().expect("the built-in template is valid");
        let html = template.render(&Values {
            lang: "ko",
            title: "대기실",
            event: "sale",
            waiting_room: "<main></main>",
            place: "…",
            wait: "…",
            state: "",
        });
        assert!(html.contains("<html lang=\"ko\">"), "{html}");
        assert!(html.contains("<title>대기실</title>"));
    }
}
