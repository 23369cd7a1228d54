//! `make chaos`: the long fault and overload scenarios of RELIABILITY.md, each a bounded
//! script against real processes (Redis Cluster, origin-queue release build, Envoy with
//! the filter), printing its figures as Markdown.
//!
//! `chaos [outage|failover|envoy-restart|overload]...` (all four when none is named).
//! Each scenario stops every process it started; the whole run takes about four
//! minutes on the 2-core CI machine. The quick versions of the same faults run in
//! `make test` (`stack_outage`, `queue_failover`, `queue_process`).

mod envoy_restart;
mod failover;
mod outage;
mod overload;
mod support;

/// The overload scenario's flood: twice the edge's queue limit (2,000/s in
/// `envoy/envoy.yaml`).
pub const FLOOD_RATE: u32 = 4_000;

/// No limit worth the name: the scenarios load one client address on purpose.
pub const UNLIMITED: &str = "1000000:1000000";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all = ["outage", "failover", "envoy-restart", "overload"];
    let chosen: Vec<&str> = if args.is_empty() {
        all.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    for name in &chosen {
        if !all.contains(name) {
            eprintln!(
                "chaos: unknown scenario {name:?}; known: {}",
                all.join(", ")
            );
            std::process::exit(2);
        }
    }
    let mut failed = Vec::new();
    for name in chosen {
        println!("\n## {name}\n");
        let ok = match name {
            "outage" => outage::outage(),
            "failover" => failover::failover(),
            "envoy-restart" => envoy_restart::envoy_restart(),
            _ => overload::overload(),
        };
        if !ok {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        println!("\nchaos: FAILED: {}", failed.join(", "));
        std::process::exit(1);
    }
    println!("\nchaos: all scenarios kept their promises");
}
