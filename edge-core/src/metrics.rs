//! The filter's counters. Envoy exposes them as `wasmcustom.<name>` stats, and as
//! `<name>` in its Prometheus output (Envoy 1.40 drops the custom namespace there). They
//! count for every event of the filter together.

/// One counter per decision and per rejection reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Protected request with a valid pass, forwarded.
    Admitted,
    /// Protected request refused with a 302 to the waiting room.
    Redirected,
    /// Protected request refused with a 403 JSON answer.
    Denied,
    /// No pass cookie on a protected request.
    NoPass,
    /// Pass refused: malformed.
    PassMalformed,
    /// Pass refused: other kind or unknown version.
    PassUnsupported,
    /// Pass refused: unknown key id.
    PassUnknownKey,
    /// Pass refused: bad signature.
    PassBadSignature,
    /// Pass refused: expired.
    PassExpired,
    /// Pass refused: not yet valid.
    PassNotYetValid,
    /// Pass refused: another event.
    PassWrongEvent,
    /// Refused by the per-client rate limit.
    RateLimitedClient,
    /// Refused by the per-visitor rate limit.
    RateLimitedVisitor,
    /// Refused by the cap on traffic to origin-queue from visitors without a ticket.
    RateLimitedQueue,
    /// A rate-limit slot was too contended (a subset of the `RateLimited*` counters).
    RateLimitContention,
    /// Forwarded to origin-queue.
    QueueForwarded,
    /// Left alone (bypass path).
    Bypassed,
    /// Refused: path not in normal form.
    PathRejected,
    /// Refused by the cap on traffic to origin-queue from visitors with a valid ticket.
    RateLimitedInLine,
    /// Forwarded to origin-queue with a valid ticket (a subset of `QueueForwarded`).
    QueueForwardedInLine,
    /// Pass refused: valid for longer than `max_pass_lifetime_seconds`.
    PassLifetimeTooLong,
    /// Refused with 404: a queue path that is not one of origin-queue's public routes
    /// (its admin API, `/metrics`, …).
    QueueRouteRefused,
    /// Refused with 431: more request header bytes than the edge accepts
    /// (`max_request_header_bytes`).
    HeadersTooLarge,
    /// Refused with 400: an empty, listed or repeated host (`:authority`, `Host`).
    HostRejected,
    /// Pass refused: its session was ended by the backend at this edge.
    PassSessionEnded,
    /// A response to an admitted request ended its session.
    SessionEnded,
    /// A session-end header removed without effect: on a response to a request without
    /// a valid pass, or with another value than `1`.
    SessionEndIgnored,
    /// Ended sessions forgotten to make room (the registry was full): their passes are
    /// accepted again at this edge until they expire.
    SessionEndForgotten,
    /// A session ended, but the edge's store refused to remember it: the pass is not
    /// refused here (the cookie is still expired and origin-queue still told).
    SessionEndNotRemembered,
    /// origin-queue confirmed a session-end report (or had already ended the session).
    SessionEndReported,
    /// A session-end report failed: origin-queue unreachable, slow or refusing. The
    /// session's place frees at its timeout instead.
    SessionEndReportFailed,
    /// A session-end report dropped unsent: too many were on their way already.
    SessionEndReportDropped,
    /// Pass refused: issued before the event's cut (`not_before`), revoked.
    PassRevoked,
}

impl Counter {
    /// Every counter, for definition at configure time.
    pub const ALL: [Counter; 33] = [
        Counter::Admitted,
        Counter::Redirected,
        Counter::Denied,
        Counter::NoPass,
        Counter::PassMalformed,
        Counter::PassUnsupported,
        Counter::PassUnknownKey,
        Counter::PassBadSignature,
        Counter::PassExpired,
        Counter::PassNotYetValid,
        Counter::PassWrongEvent,
        Counter::RateLimitedClient,
        Counter::RateLimitedVisitor,
        Counter::RateLimitedQueue,
        Counter::RateLimitContention,
        Counter::QueueForwarded,
        Counter::Bypassed,
        Counter::PathRejected,
        Counter::RateLimitedInLine,
        Counter::QueueForwardedInLine,
        Counter::PassLifetimeTooLong,
        Counter::QueueRouteRefused,
        Counter::HeadersTooLarge,
        Counter::HostRejected,
        Counter::PassSessionEnded,
        Counter::SessionEnded,
        Counter::SessionEndIgnored,
        Counter::SessionEndForgotten,
        Counter::SessionEndNotRemembered,
        Counter::SessionEndReported,
        Counter::SessionEndReportFailed,
        Counter::SessionEndReportDropped,
        Counter::PassRevoked,
    ];

    /// The stat name.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Admitted => "wr_edge_admitted",
            Counter::Redirected => "wr_edge_redirected",
            Counter::Denied => "wr_edge_denied",
            Counter::NoPass => "wr_edge_pass_missing",
            Counter::PassMalformed => "wr_edge_pass_malformed",
            Counter::PassUnsupported => "wr_edge_pass_unsupported",
            Counter::PassUnknownKey => "wr_edge_pass_unknown_key",
            Counter::PassBadSignature => "wr_edge_pass_bad_signature",
            Counter::PassExpired => "wr_edge_pass_expired",
            Counter::PassNotYetValid => "wr_edge_pass_not_yet_valid",
            Counter::PassWrongEvent => "wr_edge_pass_wrong_event",
            Counter::RateLimitedClient => "wr_edge_rate_limited_client",
            Counter::RateLimitedVisitor => "wr_edge_rate_limited_visitor",
            Counter::RateLimitedQueue => "wr_edge_rate_limited_queue",
            Counter::RateLimitContention => "wr_edge_rate_limit_contention",
            Counter::QueueForwarded => "wr_edge_queue_forwarded",
            Counter::Bypassed => "wr_edge_bypassed",
            Counter::PathRejected => "wr_edge_path_rejected",
            Counter::RateLimitedInLine => "wr_edge_rate_limited_in_line",
            Counter::QueueForwardedInLine => "wr_edge_queue_forwarded_in_line",
            Counter::PassLifetimeTooLong => "wr_edge_pass_lifetime_too_long",
            Counter::QueueRouteRefused => "wr_edge_queue_route_refused",
            Counter::HeadersTooLarge => "wr_edge_headers_too_large",
            Counter::HostRejected => "wr_edge_host_rejected",
            Counter::PassSessionEnded => "wr_edge_pass_session_ended",
            Counter::SessionEnded => "wr_edge_session_ended",
            Counter::SessionEndIgnored => "wr_edge_session_end_ignored",
            Counter::SessionEndForgotten => "wr_edge_session_end_forgotten",
            Counter::SessionEndNotRemembered => "wr_edge_session_end_not_remembered",
            Counter::SessionEndReported => "wr_edge_session_end_reported",
            Counter::SessionEndReportFailed => "wr_edge_session_end_report_failed",
            Counter::SessionEndReportDropped => "wr_edge_session_end_report_dropped",
            Counter::PassRevoked => "wr_edge_pass_revoked",
        }
    }

    /// The reason a pass was refused, for the counters that say one: `missing`, or the
    /// pass's [`wr_pass::Rejection`] name (`expired`, `bad_signature`, …).
    pub fn rejection(self) -> Option<&'static str> {
        use wr_pass::Rejection as R;
        let reason = match self {
            Counter::NoPass => return Some("missing"),
            Counter::PassSessionEnded => return Some("session_ended"),
            Counter::PassMalformed => R::Malformed,
            Counter::PassUnsupported => R::UnsupportedVersion,
            Counter::PassUnknownKey => R::UnknownKey,
            Counter::PassBadSignature => R::BadSignature,
            Counter::PassExpired => R::Expired,
            Counter::PassNotYetValid => R::NotYetValid,
            Counter::PassWrongEvent => R::WrongEvent,
            Counter::PassLifetimeTooLong => R::LifetimeTooLong,
            Counter::PassRevoked => R::Revoked,
            _ => return None,
        };
        Some(reason.as_str())
    }

    /// Index into [`Counter::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The counters one request increments: at most three, so they live inline and a
/// request allocates nothing for them.
pub type Counters = smallvec::SmallVec<[Counter; 3]>;

/// Counts not yet handed to the host: a runtime whose host calls cost something adds a
/// request's counters here and hands the totals over now and then (the proxy-wasm
/// filter: on every tick), so a request makes no metric call.
#[derive(Debug)]
pub struct Tally {
    counts: [u64; Counter::ALL.len()],
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            counts: [0; Counter::ALL.len()],
        }
    }
}

impl Tally {
    /// Adds one to each of `counters`.
    pub fn add(&mut self, counters: &[Counter]) {
        for counter in counters {
            let count = &mut self.counts[counter.index()];
            *count = count.saturating_add(1);
        }
    }

    /// The counters with something to add, and how much; leaves the tally empty.
    pub fn drain(&mut self) -> Vec<(Counter, u64)> {
        let drained = Counter::ALL
            .iter()
            .zip(&self.counts)
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| (*c, *n))
            .collect();
        self.counts = [0; Counter::ALL.len()];
        drained
    }
}

/// A counter is written as its stat name.
impl serde::Serialize for Counter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_hands_over_each_count_once() {
        let mut t = Tally::default();
        t.add(&[Counter::Admitted, Counter::Denied]);
        t.add(&[Counter::Admitted]);
        assert_eq!(
            t.drain(),
            vec![(Counter::Admitted, 2), (Counter::Denied, 1)]
        );
        assert_eq!(t.drain(), vec![]);
    }

    #[test]
    fn all_is_in_index_order_with_unique_names() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert!(Counter::ALL[..i].iter().all(|d| d.name() != c.name()));
        }
    }
}
