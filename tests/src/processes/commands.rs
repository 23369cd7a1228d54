//! Commands pinned to a CPU, or run at idle priority, for benchmarks and load scenarios.

use std::process::Command;

/// A command for `program`, pinned to `cpu` with `taskset` if one is given.
pub fn command_on_cpu(program: &str, cpu: Option<u32>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.args(["-c", &cpu.to_string(), program]);
            command
        }
        None => Command::new(program),
    }
}

/// Like [`command_on_cpu`], at the idle scheduling priority (`chrt --idle 0`): the
/// program gets only the CPU time that no other process wants. A load tool run so
/// beside the product stands in for a machine of its own.
pub fn command_idle_on_cpu(program: &str, cpu: Option<u32>) -> Command {
    let mut command = Command::new("chrt");
    command.args(["--idle", "0"]);
    if let Some(cpu) = cpu {
        command.args(["taskset", "-c", &cpu.to_string()]);
    }
    command.arg(program);
    command
}
