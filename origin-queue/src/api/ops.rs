//! The operations routes: `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{AppResult, Gates, Queue};
use crate::metrics::Metrics;

/// Alive.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready: Redis answers.
pub async fn ready(State(queue): State<Arc<Queue>>) -> AppResult {
    queue.store.ping().await?;
    Ok("ready".into_response())
}

/// The Prometheus exposition: the service's metrics, the current in-flight caps, and the
/// waiting-room page's failed template reads (served the last good or the built-in page).
pub async fn metrics(
    State(metrics): State<Arc<Metrics>>,
    State(gates): State<Arc<Gates>>,
) -> Response {
    let mut text = metrics.render();
    text.push_str(&format!(
        "# TYPE wr_in_flight_cap gauge\nwr_in_flight_cap{{cap=\"join\"}} {}\nwr_in_flight_cap{{cap=\"poll\"}} {}\n",
        gates.join_cap.cap(),
        gates.poll_cap.cap()
    ));
    text.push_str(&format!(
        "# TYPE wr_page_template_read_failures_total counter
wr_page_template_read_failures_total {}
",
        super::page_template_failed_reads()
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
