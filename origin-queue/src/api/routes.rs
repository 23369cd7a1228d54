//! The service's routes: each path and method to its handler, and the layers every
//! request goes through.

use std::sync::Arc;

use axum::middleware;
use axum::routing::{get, post, put};
use axum::Router;
use wr_pass::wire;

use super::{
    admin, console, draw, event_state, gate, join, leave, ops, page, page_admin, session_end,
    status, ApiError, AppState, MAX_BODY,
};

/// The service's routes.
pub fn router(state: AppState) -> Router {
    let admin_route = |tail: &str| format!("{}events/{{event}}{tail}", wire::ADMIN_PREFIX);
    let event_route = |tail: &str| format!("{}{{event}}{tail}", wire::EVENTS_PREFIX);
    let admin = Router::new()
        .route(&admin_route(""), put(admin::configure_event))
        .route(&admin_route("/pause"), post(admin::pause))
        .route(&admin_route("/resume"), post(admin::resume))
        .route(&admin_route("/revoke"), post(admin::revoke))
        .route(&admin_route("/stats"), get(admin::stats))
        .route(
            &admin_route("/page"),
            put(page_admin::put_page)
                .get(page_admin::get_page)
                .delete(page_admin::delete_page),
        )
        .route(&admin_route("/console"), get(console::figures))
        .route(
            &format!("{}events", wire::ADMIN_PREFIX),
            get(console::events),
        )
        .route_layer(middleware::from_fn_with_state(
            state.admin.clone(),
            admin::require_admin,
        ));
    let joins = Router::new()
        .route(&event_route("/join"), post(join::join))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            gate::gate_joins,
        ));
    let polls = Router::new()
        .route(&event_route("/status"), get(status::status))
        .route(&event_route("/leave"), post(leave::leave))
        .route(&event_route(""), get(event_state::public_state))
        .route(&event_route("/draw"), get(draw::record))
        .route(&event_route("/draw/order"), get(draw::order))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            gate::gate_polls,
        ));
    let reports = Router::new()
        .route(
            &event_route(&format!("/{}", wire::SESSION_END_ROUTE)),
            post(session_end::end_session),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            gate::gate_reports,
        ));
    let page = format!("{}{{event}}", wire::WAITING_ROOM_PREFIX);
    Router::new()
        .merge(joins)
        .merge(polls)
        .merge(reports)
        .merge(
            // The page reads the operators' templates through its own cache.
            Router::new()
                .route(&page, get(page::waiting_room))
                .with_state(Arc::new(page::PageTemplates::new(
                    state.queue.store.clone(),
                ))),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .merge(admin)
        .route(
            &format!("{}console", wire::ADMIN_PREFIX),
            get(console::page),
        )
        .fallback(|| async { ApiError::NoRoute })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), gate::track))
        .with_state(state)
}
