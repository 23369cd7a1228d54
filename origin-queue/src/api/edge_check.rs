//! Refusing an edge whose wire settings differ from origin-queue's.
//!
//! The edge filter sends its settings (cookie names, clock-skew leeway, longest pass
//! lifetime) with every request it forwards here, in [`WIRE_HEADER`]. If they differ
//! from ours, admission is broken however well each side works: a visitor admitted
//! here would carry a pass the edge never looks at, or one it refuses, and would be
//! sent back to the waiting room forever. So such requests get 500 `EDGE_MISMATCH`
//! naming every difference, and the log says it too (at most once a minute), instead
//! of a loop that looks like a working queue. Requests that do not come through the
//! filter carry no such header and are not checked.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderMap;
use wr_pass::wire::{Wire, WIRE_HEADER};

use super::error::ApiError;
use crate::clock::now_ms;

/// Fails with `EDGE_MISMATCH` if the request's edge disagrees with `ours`.
pub fn check_edge(ours: &Wire, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(theirs) = headers.get(WIRE_HEADER) else {
        return Ok(());
    };
    let differences = ours.differences(theirs.as_bytes());
    if differences.is_empty() {
        return Ok(());
    }
    let text = differences.join("; ");
    log_mismatch(&text);
    Err(ApiError::EdgeMismatch(text))
}

fn log_mismatch(text: &str) {
    static LAST_MS: AtomicU64 = AtomicU64::new(0);
    let now = now_ms();
    let last = LAST_MS.load(Ordering::Relaxed);
    if (last == 0 || now.saturating_sub(last) >= 60_000)
        && LAST_MS
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        tracing::error!(
            differences = text,
            "the edge filter's wire settings differ from origin-queue's: set the same pass_cookie, ticket_cookie, clock_skew_seconds and max_pass_lifetime_seconds on both"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(WIRE_HEADER, value.parse().unwrap());
        headers
    }

    #[test]
    fn agreeing_or_absent_edges_pass() {
        let ours = Wire::default();
        assert!(check_edge(&ours, &HeaderMap::new()).is_ok());
        assert!(check_edge(&ours, &headers(&ours.to_header())).is_ok());
    }

    #[test]
    fn a_differing_edge_is_refused_by_name() {
        let edge = Wire {
            pass_cookie: "shop_pass".into(),
            ..Wire::default()
        };
        let refused = check_edge(&Wire::default(), &headers(&edge.to_header()));
        let Err(ApiError::EdgeMismatch(text)) = refused else {
            panic!("not refused as a mismatch: {refused:?}");
        };
        assert!(
            text.contains(r#"pass_cookie: edge "shop_pass", origin-queue "wr_pass""#),
            "{text}"
        );
    }
}
