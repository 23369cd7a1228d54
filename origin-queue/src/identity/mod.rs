//! Who signs and who is who: the key ring loaded from the environment, and the optional
//! JWT identity of a visitor.

pub mod jwt;
pub mod key_ring;
