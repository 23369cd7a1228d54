//! `origin-queue`: the queue service (`serve`) and the operator's pass tools
//! (`pass mint`, `pass inspect`, `pow solve`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use origin_queue::cli::{pass_cli, pow_cli};
use origin_queue::service::{server, settings};
use origin_queue::telemetry;

/// mimalloc instead of glibc malloc: under load glibc's arenas showed up as a fifth of
/// the service's CPU (allocation, consolidation and arena lock waits), see BENCHMARKS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Solve a join's proof-of-work challenge (the reference solver).
    Pow {
        #[command(subcommand)]
        command: pow_cli::PowCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => serve(),
        Command::Pass { command } => pass_cli::run(command),
        Command::Pow { command } => pow_cli::run(command),
    }
}

fn serve() -> ExitCode {
    let telemetry = match telemetry::init(&|name| std::env::var(name).ok()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("origin-queue: refusing to start: {e}");
            return ExitCode::from(2);
        }
    };
    if telemetry.tracing() {
        tracing::info!("exporting traces over OTLP (see the OTEL_* settings)");
    }
    let settings = match settings::Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("origin-queue: refusing to start: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("origin-queue: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Redis's side (connection, status batches, admission loop) on a thread of its own.
    let redis_runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("redis-io")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("origin-queue: cannot start the Redis runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(server::run(settings, redis_runtime.handle().clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("origin-queue: {e}");
            ExitCode::FAILURE
        }
    };
    redis_runtime.shutdown_background();
    telemetry.shutdown();
    code
}
