//! `origin-queue pass mint` and `origin-queue pass inspect`.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Subcommand;
use serde_json::json;
use wr_pass::{parse_unverified, Claims, KeyRing, Rejection, TokenKind, Validity, Wire};

use crate::identity::key_ring;
use crate::service::settings::load_wire;

/// The `pass` subcommands.
#[derive(Subcommand)]
pub enum PassCommand {
    /// Print a valid `wr_pass` value signed with the active key.
    Mint {
        /// Event id (1-64 of [a-z0-9_-]).
        #[arg(long)]
        event: String,
        /// Visitor id (1-64 of [A-Za-z0-9_-]).
        #[arg(long)]
        visitor: String,
        /// Lifetime in seconds, from 1 to the longest pass lifetime the edge accepts
        /// (`WR_MAX_PASS_LIFETIME_SECONDS`, default 86400).
        #[arg(long)]
        ttl: u64,
    },
    /// Print a pass's claims and whether its signature and validity window hold.
    /// Exits 0 if the pass is valid, 1 if not.
    Inspect {
        /// The pass value (the cookie value, without `wr_pass=`).
        value: String,
        /// Also check that the pass is for this event.
        #[arg(long)]
        event: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `pass` subcommand.
pub fn run(command: PassCommand) -> ExitCode {
    match command {
        PassCommand::Mint {
            event,
            visitor,
            ttl,
        } => mint(&event, &visitor, ttl),
        PassCommand::Inspect { value, event, json } => inspect(&value, event.as_deref(), json),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn mint(event: &str, visitor: &str, ttl: u64) -> ExitCode {
    let wire = match load_wire() {
        Ok(wire) => wire,
        Err(e) => {
            eprintln!("origin-queue pass mint: {e}");
            return ExitCode::from(2);
        }
    };
    let longest = wire.max_pass_lifetime_seconds;
    if ttl == 0 || ttl > longest {
        eprintln!(
            "origin-queue pass mint: --ttl must be between 1 and {longest} seconds (the longest pass lifetime the edge accepts, WR_MAX_PASS_LIFETIME_SECONDS)"
        );
        return ExitCode::from(2);
    }
    let ring = match key_ring::load(&crate::service::env::Env::process()) {
        Ok(ring) => ring,
        Err(e) => {
            eprintln!("origin-queue pass mint: {e}");
            return ExitCode::from(2);
        }
    };
    let issued = now();
    match ring.mint(
        TokenKind::Pass,
        &Claims::new(event, visitor, issued, issued + ttl),
    ) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("origin-queue pass mint: {e}");
            ExitCode::from(2)
        }
    }
}

fn inspect(value: &str, event: Option<&str>, as_json: bool) -> ExitCode {
    let value = value
        .trim()
        .strip_prefix("wr_pass=")
        .unwrap_or(value.trim());
    let now = now();
    let ring = key_ring::load(&crate::service::env::Env::process());
    let decoded = parse_unverified(value.as_bytes());
    let wire = load_wire();
    let verdict: Result<(), String> = match (&ring, &wire) {
        (Ok(ring), Ok(wire)) => check(ring, wire, value, now, event).map_err(|r| r.to_string()),
        (Err(e), _) => Err(format!("signature not checked: {e}")),
        (_, Err(e)) => Err(format!("signature not checked: {e}")),
    };
    let claims = decoded.as_ref().ok().and_then(|u| u.claims.as_ref().ok());
    // A valid pass past its expiry (or before its issue time) is valid only thanks to
    // the clock-skew leeway: say so.
    let leeway = match (&verdict, claims, &wire) {
        (Ok(()), Some(c), Ok(wire)) => {
            leeway_note(c.issued_at, c.expires_at, now, wire.clock_skew_seconds)
        }
        _ => None,
    };
    if as_json {
        let report = json!({
            "valid": verdict.is_ok(),
            "reason": verdict.as_ref().err(),
            "kind": decoded.as_ref().ok().map(|u| u.kind.prefix()),
            "key_id": decoded.as_ref().ok().map(|u| u.key_id.as_str()),
            "claims": claims.map(|c| json!({
                "event": c.event, "visitor": c.visitor,
                "issued_at": c.issued_at, "expires_at": c.expires_at,
                "extensions": c.extensions.len(),
            })),
            "now": now,
            "leeway": leeway,
        });
        println!("{report}");
    } else {
        match &decoded {
            Err(reason) => println!("decoded:    no ({reason})"),
            Ok(u) => {
                println!("kind:       {}", u.kind.prefix());
                println!("key id:     {}", u.key_id);
                match &u.claims {
                    Err(reason) => println!("claims:     undecodable ({reason})"),
                    Ok(c) => {
                        println!("event:      {}", c.event);
                        println!("visitor:    {}", c.visitor);
                        println!(
                            "issued at:  {} ({})",
                            c.issued_at,
                            relative(c.issued_at, now)
                        );
                        println!(
                            "expires at: {} ({})",
                            c.expires_at,
                            relative(c.expires_at, now)
                        );
                        if !c.extensions.is_empty() {
                            println!("extensions: {}", c.extensions.len());
                        }
                    }
                }
            }
        }
        match &verdict {
            Ok(()) => println!(
                "result:     VALID (signature, validity window{}){}",
                if event.is_some() { ", event" } else { "" },
                leeway
                    .as_deref()
                    .map(|n| format!("; {n}"))
                    .unwrap_or_default()
            ),
            Err(reason) => println!("result:     INVALID: {reason}"),
        }
    }
    if verdict.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Checks a pass as the edge does, with the same wire settings.
fn check(
    ring: &KeyRing,
    wire: &Wire,
    value: &str,
    now: u64,
    event: Option<&str>,
) -> Result<(), Rejection> {
    let validity = Validity::at(now, wire.clock_skew_seconds)
        .with_max_lifetime(wire.max_pass_lifetime_seconds);
    ring.verify(TokenKind::Pass, value.as_bytes(), validity, event)
        .map(|_| ())
}

/// Why a valid pass is valid only within the clock-skew leeway, if it is.
fn leeway_note(issued_at: u64, expires_at: u64, now: u64, leeway: u64) -> Option<String> {
    if expires_at <= now {
        Some(format!(
            "expired {} s ago, accepted within the {leeway} s clock-skew leeway",
            now - expires_at
        ))
    } else if issued_at > now {
        Some(format!(
            "issued {} s in the future, accepted within the {leeway} s clock-skew leeway",
            issued_at - now
        ))
    } else {
        None
    }
}

fn relative(at: u64, now: u64) -> String {
    if at >= now {
        format!("in {} s", at - now)
    } else {
        format!("{} s ago", now - at)
    }
}

#[cfg(test)]
mod tests {
    use super::leeway_note;

    #[test]
    fn a_pass_valid_only_within_the_leeway_says_so() {
        assert_eq!(
            leeway_note(900, 1_000, 1_012, 30).as_deref(),
            Some("expired 12 s ago, accepted within the 30 s clock-skew leeway")
        );
        assert_eq!(
            leeway_note(1_005, 1_600, 1_000, 30).as_deref(),
            Some("issued 5 s in the future, accepted within the 30 s clock-skew leeway")
        );
        assert_eq!(leeway_note(900, 1_600, 1_000, 30), None);
    }
}
