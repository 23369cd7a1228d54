//! `GET /v1/events/{event}/draw` and `/draw/order`: the opening draw's public record,
//! so that anyone can check it (the procedure: `docs/draw.md`).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use super::{checked_event, AppResult, Queue};
use crate::store::MAX_ORDER_PAGE;

/// The procedure, as published with the record (the full text is `docs/draw.md`).
pub const PROCEDURE: &str =
    "commitment = hex(SHA-256(seed)), published when the event was created; \
key(v) = hex(SHA-1(seed + \":\" + v)) for each entrant id v; places 1, 2, ... go in ascending \
byte order of key(v) + v (lowercase hex throughout)";

/// The commitment to the seed from the event's creation; after the draw, the seed, the
/// number of entrants and when it ran.
pub async fn record(State(queue): State<Arc<Queue>>, Path(event): Path<String>) -> AppResult {
    checked_event(&event)?;
    let stats = queue.stats_of(&event).await?;
    let record = queue
        .store
        .draw_record(&event)
        .await?
        .ok_or(ApiError::EventNotFound)?;
    let ms_to_secs = |ms: u64| ms as f64 / 1000.0;
    Ok(Json(json!({
        "event": event,
        "prequeue": stats.prequeue.name(),
        "prequeue_opens_at": stats.config.prequeue_opens_at,
        "draw_at": stats.config.opens_at,
        "commitment": record.commitment,
        "committed_at": ms_to_secs(record.committed_at_ms),
        "seed": record.seed,
        "drawn_at": record.drawn_at_ms.map(ms_to_secs),
        "entrants": record.entrants,
        "draws": record.draws,
        "procedure": PROCEDURE,
        "order": format!("/v1/events/{event}/draw/order?offset=0&limit={MAX_ORDER_PAGE}"),
    }))
    .into_response())
}

/// A page of the drawn order: `offset` (0-based, default 0) and `limit` (1 to
/// [`MAX_ORDER_PAGE`], default that).
pub async fn order(
    State(queue): State<Arc<Queue>>,
    Path(event): Path<String>,
    RawQuery(query): RawQuery,
) -> AppResult {
    checked_event(&event)?;
    let (offset, limit) = page(query.as_deref().unwrap_or(""))?;
    // The seed is published once the draw has completed, and not before.
    let record = queue.store.draw_record(&event).await?;
    match record {
        None => return Err(ApiError::EventNotFound),
        Some(r) if r.seed.is_none() => return Err(ApiError::NotDrawnYet),
        Some(_) => {}
    }
    let entrants = queue.store.draw_order(&event, offset, limit).await?;
    Ok(Json(json!({
        "event": event,
        "offset": offset,
        "first_place": offset + 1,
        "entrants": entrants,
    }))
    .into_response())
}

/// Reads `offset` and `limit` from a query string; every problem is a clear error.
fn page(query: &str) -> Result<(u64, u64), ApiError> {
    let (mut offset, mut limit) = (0, MAX_ORDER_PAGE);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = value
            .parse::<u64>()
            .map_err(|_| ApiError::BadQuery(format!("{name}: not a whole number: {value:?}")))?;
        match name {
            "offset" => offset = number,
            "limit" if (1..=MAX_ORDER_PAGE).contains(&number) => limit = number,
            "limit" => {
                return Err(ApiError::BadQuery(format!(
                    "limit: between 1 and {MAX_ORDER_PAGE}"
                )))
            }
            _ => return Err(ApiError::BadQuery(format!("unknown parameter {name:?}"))),
        }
    }
    Ok((offset, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_defaults_to_the_first_ten_thousand() {
        assert_eq!(page("").unwrap(), (0, MAX_ORDER_PAGE));
        assert_eq!(page("offset=20&limit=5").unwrap(), (20, 5));
    }

    #[test]
    fn a_bad_page_is_refused_with_the_reason() {
        for bad in [
            "limit=0",
            "limit=10001",
            "offset=-1",
            "offset=x",
            "sort=asc",
        ] {
            assert!(matches!(page(bad), Err(ApiError::BadQuery(_))), "{bad}");
        }
    }
}
