//! What a refused pass is answered: the counter, the API code and the message of each
//! rejection reason.

use wr_pass::Rejection;

use crate::metrics::Counter;

/// The counter, code and message for a pass refused for `reason` (`None`: no pass).
pub(super) fn describe(reason: Option<Rejection>) -> (Counter, &'static str, &'static str) {
    const INVALID: &str = "The admission pass is not valid.";
    match reason {
        None => (
            Counter::NoPass,
            "NOT_ADMITTED",
            "An admission pass is required: join the waiting room.",
        ),
        Some(Rejection::Malformed) => (Counter::PassMalformed, "PASS_INVALID", INVALID),
        Some(Rejection::UnsupportedVersion) => (Counter::PassUnsupported, "PASS_INVALID", INVALID),
        Some(Rejection::UnknownKey) => (Counter::PassUnknownKey, "PASS_INVALID", INVALID),
        Some(Rejection::BadSignature) => (Counter::PassBadSignature, "PASS_INVALID", INVALID),
        Some(Rejection::Expired) => (
            Counter::PassExpired,
            "PASS_EXPIRED",
            "The admission pass has expired.",
        ),
        Some(Rejection::NotYetValid) => (
            Counter::PassNotYetValid,
            "PASS_NOT_YET_VALID",
            "The admission pass is not valid yet.",
        ),
        Some(Rejection::WrongEvent) => (
            Counter::PassWrongEvent,
            "PASS_WRONG_EVENT",
            "The admission pass is for another event.",
        ),
        Some(Rejection::LifetimeTooLong) => (Counter::PassLifetimeTooLong, "PASS_INVALID", INVALID),
        Some(Rejection::Revoked) => (
            Counter::PassRevoked,
            "PASS_REVOKED",
            "The admission pass was revoked: join the waiting room again.",
        ),
    }
}
