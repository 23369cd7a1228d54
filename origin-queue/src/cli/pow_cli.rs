//! `origin-queue pow solve`: the reference solver of the join's proof of work, for
//! scripts and API clients (the same function the tests use, `wr_pass::pow::solve`).

use std::process::ExitCode;
use std::time::Instant;

use clap::Subcommand;
use wr_pass::pow::{solve, Challenge, MAX_DIFFICULTY, MIN_DIFFICULTY};
use wr_pass::{parse_unverified, TokenKind};

/// The `pow` subcommands.
#[derive(Subcommand)]
pub enum PowCommand {
    /// Solve a challenge (the `error.pow.challenge` of a `403 POW_REQUIRED` join) and
    /// print the value of the `x-wr-pow` header to join with. The difficulty is read
    /// from the challenge. Exits 2 for a token that is not a challenge.
    Solve {
        /// The challenge token.
        challenge: String,
        /// Also print the hashes tried and the time taken, on standard error.
        #[arg(long)]
        verbose: bool,
    },
}

/// Runs a `pow` subcommand.
pub fn run(command: PowCommand) -> ExitCode {
    match command {
        PowCommand::Solve { challenge, verbose } => solve_one(&challenge, verbose),
    }
}

fn solve_one(challenge: &str, verbose: bool) -> ExitCode {
    // The solver needs only the difficulty; the signature is origin-queue's to check.
    let difficulty = parse_unverified(challenge.as_bytes())
        .ok()
        .filter(|u| u.kind == TokenKind::Challenge)
        .and_then(|u| u.claims.ok())
        .and_then(|claims| Challenge::from_claims(&claims))
        .map(|c| c.difficulty);
    let Some(difficulty) = difficulty else {
        eprintln!(
            "origin-queue pow solve: not a challenge token (c1.…, difficulty {MIN_DIFFICULTY}-{MAX_DIFFICULTY})"
        );
        return ExitCode::from(2);
    };
    let started = Instant::now();
    let solution = solve(challenge, difficulty);
    if verbose {
        let nonce = solution.rsplit(':').next().unwrap_or_default();
        eprintln!(
            "difficulty {difficulty}: nonce {nonce} in {:.3} s",
            started.elapsed().as_secs_f64()
        );
    }
    println!("{solution}");
    ExitCode::SUCCESS
}
