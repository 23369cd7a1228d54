//! Tickets (proof of a place in line) and passes (proof of admission): reading the one
//! a request presents, minting new ones, and the cookies that carry them.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use wr_pass::wire::{Wire, COOKIE_ATTRIBUTES, TICKET_HEADER};
use wr_pass::{Claims, KeyRing, TokenKind, Validity};

use super::error::ApiError;
use crate::clock::now_ms;

/// What reading and minting tickets and passes needs.
pub struct Tickets {
    /// Signing keys for tickets and passes.
    pub keys: KeyRing,
    /// Cookie names, clock-skew leeway and longest pass lifetime, as the edge has them.
    pub wire: Wire,
    /// Adds `Secure` to cookies.
    pub cookie_secure: bool,
    /// Ticket lifetime.
    pub ticket_ttl_secs: u64,
}

impl Tickets {
    /// The claims of the valid ticket for `event` the request presents; `None` if it
    /// presents none, an error if it presents one that is not valid.
    pub fn presented(&self, headers: &HeaderMap, event: &str) -> Result<Option<Claims>, ApiError> {
        let Some(ticket) = presented_ticket(headers, &self.wire.ticket_cookie) else {
            return Ok(None);
        };
        let validity = Validity::at(now_ms() / 1000, self.wire.clock_skew_seconds);
        self.keys
            .verify(TokenKind::Ticket, ticket.as_bytes(), validity, Some(event))
            .map(Some)
            .map_err(|reason| ApiError::TicketInvalid(reason.to_string()))
    }

    /// The claims of the request's valid ticket for `event`, which it must present.
    pub fn required(&self, headers: &HeaderMap, event: &str) -> Result<Claims, ApiError> {
        self.presented(headers, event)?
            .ok_or_else(|| ApiError::TicketRequired {
                cookie: self.wire.ticket_cookie.clone(),
            })
    }

    /// The claims of a valid pass for `event` (as the edge checks it: leeway and the
    /// longest pass lifetime); 403 with the reason otherwise.
    pub fn pass(&self, pass: &str, event: &str) -> Result<Claims, ApiError> {
        let validity = Validity::at(now_ms() / 1000, self.wire.clock_skew_seconds)
            .with_max_lifetime(self.wire.max_pass_lifetime_seconds);
        self.keys
            .verify(TokenKind::Pass, pass.as_bytes(), validity, Some(event))
            .map_err(ApiError::PassRefused)
    }

    /// A new token of `kind` for `claims`.
    pub fn mint(&self, kind: TokenKind, claims: &Claims) -> Result<String, ApiError> {
        self.keys
            .mint(kind, claims)
            .map_err(|e| ApiError::Internal(format!("minting a {kind:?}: {e}")))
    }

    /// Hands a new ticket to the visitor: in the ticket cookie and in [`TICKET_HEADER`].
    pub fn hand_ticket(&self, response: &mut Response, ticket: &str) -> Result<(), ApiError> {
        let name = &self.wire.ticket_cookie;
        self.set_cookie(response, name, ticket, self.ticket_ttl_secs);
        let value = HeaderValue::from_str(ticket)
            .map_err(|_| ApiError::Internal("a ticket that is no header value".into()))?;
        response.headers_mut().insert(TICKET_HEADER, value);
        Ok(())
    }

    /// Hands a new pass to the visitor, in the pass cookie, for `max_age` seconds.
    pub fn hand_pass(&self, response: &mut Response, pass: &str, max_age: u64) {
        self.set_cookie(response, &self.wire.pass_cookie, pass, max_age);
    }

    fn set_cookie(&self, response: &mut Response, name: &str, value: &str, max_age: u64) {
        let secure = if self.cookie_secure { "; Secure" } else { "" };
        let text = format!("{name}={value}; Max-Age={max_age}; {COOKIE_ATTRIBUTES}{secure}");
        if let Ok(v) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// The ticket a request presents: [`TICKET_HEADER`], else the cookie `cookie`.
pub fn presented_ticket<'h>(headers: &'h HeaderMap, cookie: &str) -> Option<&'h str> {
    headers
        .get(TICKET_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| cookie_value(headers, cookie))
}

fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.trim())
}
