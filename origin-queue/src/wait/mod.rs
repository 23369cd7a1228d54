//! What a waiting visitor is told about the wait: the estimate and its range, the
//! estimate carried in the ticket, how often to poll, and the wait of a visitor whose
//! place is not known yet (an entrant of an opening draw).

pub mod eta;
pub mod eta_record;
pub mod poll_advice;
pub mod unknown_place;
