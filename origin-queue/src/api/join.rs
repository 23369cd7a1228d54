//! `POST /v1/events/{event}/join`: a place in line and a ticket that proves it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::Rng;
use wr_pass::{Claims, TokenKind};

use super::bearer::bearer_token;
use super::error::ApiError;
use super::idempotent::idempotent;
use super::placement::Placement;
use super::tickets::Tickets;
use super::{checked_event, AppResult, Gates, Identity, Queue};
use crate::batching::join_batch::Placed;
use crate::clock::now_ms;
use crate::store::{JoinRequest, Joined, Work};
use crate::wait::eta_record::EtaRecord;

/// Joins the line (under the request's `Idempotency-Key`, if any).
pub async fn join(
    State(queue): State<Arc<Queue>>,
    State(tickets): State<Arc<Tickets>>,
    State(gates): State<Arc<Gates>>,
    State(identity): State<Identity>,
    Path(event): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult {
    let cookie = &tickets.wire.ticket_cookie;
    idempotent(
        &queue.store,
        cookie,
        &event,
        &headers,
        "join",
        &body,
        || join_now(&queue, &tickets, &gates, &identity, &event, &headers),
    )
    .await
}

async fn join_now(
    queue: &Queue,
    tickets: &Tickets,
    gates: &Gates,
    identity: &Identity,
    event: &str,
    headers: &HeaderMap,
) -> AppResult {
    checked_event(event)?;
    let now = now_ms();
    // A bad or foreign ticket is replaced, never trusted.
    let ticket = tickets.presented(headers, event).ok().flatten();
    let user = identity.visitor(headers).await?;
    let (visitor, work) = who_joins(tickets, gates, event, headers, &ticket, user, now)?;
    let Placed {
        joined,
        waiting,
        observed,
        ..
    } = queue
        .joins
        .join(
            event,
            JoinRequest {
                visitor: visitor.clone(),
                work,
            },
        )
        .await?;
    // The promise shown at join travels in the ticket: a new place gets a new record,
    // an old place keeps the one its ticket carries.
    let mut promise = ticket
        .filter(|t| t.visitor == visitor)
        .and_then(|t| EtaRecord::from_claims(&t));
    let body = match joined {
        Joined::NoEvent => return Err(ApiError::EventNotFound),
        Joined::NotOpen { opens_at_ms } => {
            return Err(ApiError::NotOpenYet {
                in_secs: opens_at_ms
                    .saturating_sub(now)
                    .div_ceil(1000)
                    .clamp(1, 3600) as u32,
                opens_at: opens_at_ms.div_ceil(1000),
            })
        }
        Joined::Closed => Placement::other(&visitor, "closed", 0).in_mode(observed.mode),
        Joined::Revoked => return Err(ApiError::AdmissionRevoked),
        Joined::PowReplayed => return Err(ApiError::PowReplayed),
        Joined::PowRequired { difficulty } => {
            let issued = tickets.challenge(event, &visitor, difficulty, now / 1000)?;
            return Err(ApiError::PowRequired(Box::new(issued)));
        }
        Joined::Admitted => Placement::other(&visitor, "admitted", waiting).in_mode(observed.mode),
        Joined::InDraw { entrants, .. } => {
            Placement::in_draw(&visitor, entrants, waiting, &observed, now)
        }
        Joined::Waiting { rank, new_seq } => {
            let body = Placement::waiting(&visitor, rank, waiting, &observed);
            if new_seq.is_some() {
                promise = body.estimate.map(|e| EtaRecord {
                    joined_ms: now,
                    eta_ms: e.eta_ms,
                    range_ms: Some((e.low_ms, e.high_ms)),
                });
            }
            body
        }
    };
    let mut response = body.into_response();
    // An entrant of a draw not run yet is promised nothing (its place is unknown), so
    // its wait does not count in the ETA accuracy figures.
    if !matches!(joined, Joined::Closed) {
        let mut claims = Claims::new(
            event,
            &visitor,
            now / 1000,
            now / 1000 + tickets.ticket_ttl_secs,
        );
        claims
            .extensions
            .extend(promise.map(EtaRecord::to_extension));
        let ticket = tickets.mint(TokenKind::Ticket, &claims)?;
        tickets.hand_ticket(&mut response, &ticket)?;
    }
    Ok(response)
}

/// Who joins, and the work the join shows. A ticket holder (whose ticket names the
/// signed-in user, if any) joins again as itself and needs no work: its first place
/// was taken with whatever work was asked then, and one visitor holds one place. Anyone
/// else is the visitor a solved challenge was handed to, the signed-in user, or a new
/// visitor; only a new place asks for work (`join.lua`). Only visitors seen before are
/// rate-limited: a new id has a full bucket by definition, and tracking every fresh id
/// would fill the limiter during a join flood.
fn who_joins(
    tickets: &Tickets,
    gates: &Gates,
    event: &str,
    headers: &HeaderMap,
    ticket: &Option<Claims>,
    user: Option<String>,
    now_ms: u64,
) -> Result<(String, Work), ApiError> {
    let holder = ticket
        .as_ref()
        .map(|t| t.visitor.clone())
        .filter(|v| user.as_ref().is_none_or(|u| u == v));
    if let Some(visitor) = holder {
        gates.limit_visitor(&visitor)?;
        return Ok((visitor, Work::NotNeeded));
    }
    if let Some(solved) = tickets.solution(headers, event, now_ms / 1000)? {
        if user.as_ref().is_some_and(|u| *u != solved.visitor) {
            return Err(ApiError::PowInvalid(
                "the challenge was handed to another visitor".into(),
            ));
        }
        gates.limit_visitor(&solved.visitor)?;
        return Ok((solved.visitor, solved.work));
    }
    match user {
        Some(user) => {
            gates.limit_visitor(&user)?;
            Ok((user, Work::None))
        }
        None => Ok((new_visitor_id(), Work::None)),
    }
}

fn new_visitor_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Identity {
    /// With JWT identity configured: the user's visitor id from a valid bearer token,
    /// an error for an invalid one, and an error for none when tokens are required.
    async fn visitor(&self, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
        let Some(verifier) = &self.0 else {
            return Ok(None);
        };
        match bearer_token(headers) {
            Some(token) => verifier
                .visitor(token)
                .await
                .map(Some)
                .map_err(|e| ApiError::JwtInvalid(e.0)),
            None if verifier.required() => Err(ApiError::JwtRequired),
            None => Ok(None),
        }
    }
}
