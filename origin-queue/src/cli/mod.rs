//! The operator's subcommands besides `serve`: `pass mint` / `pass inspect` and
//! `pow solve`.

pub mod pass_cli;
pub mod pow_cli;
