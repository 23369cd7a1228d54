//! `origin-queue`: the queue service (`serve`) and the operator's pass tools
//! (`pass mint`, `pass inspect`).

mod keys;
mod pass_cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "origin-queue",
    version,
    about = "Edge waiting room: queue service and pass tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the queue service.
    Serve,
    /// Mint and inspect `wr_pass` admission passes with the configured key ring
    /// (`WR_KEYS` or `WR_KEYS_FILE`).
    Pass {
        #[command(subcommand)]
        command: pass_cli::PassCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => serve(),
        Command::Pass { command } => pass_cli::run(command),
    }
}

fn serve() -> ExitCode {
    if let Err(e) = keys::load() {
        eprintln!("origin-queue: refusing to start: {e}");
        return ExitCode::from(2);
    }
    eprintln!("origin-queue serve: the queue service is not implemented in this build yet");
    ExitCode::from(2)
}
