//! Running the service: its settings (from a file and the environment, or a list in
//! tests), the service itself (connect, start the loops, serve, drain) and the HTTP
//! server under its router.

pub mod env;
pub mod http_server;
pub mod server;
pub mod settings;
