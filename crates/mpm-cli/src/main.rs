//! `mpm`: the command-line front of the mpm toolkit.
//!
//! `mpm demo` runs an agent-orchestration service in miniature, built with mpm, and prints
//! each figure it measures beside the performance guide's; `--serve` keeps it running with a
//! live dashboard. `mpm memory optimize|analyze|stats PATH...` optimizes agent memory files (a
//! file, or a `.claude-mpm/memories` directory) with `mpm-memory-opt`.
//!
//! Exit codes: 0 done, 1 an error on some file (the others are still processed) or nothing to
//! work on, 2 usage error.
//!
//! Each subcommand lives in its own module; adding one is a variant of [`Command`] and a module.
#![forbid(unsafe_code)]

mod demo;
mod memory;
mod wording;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mpm: the end-to-end demo of the mpm toolkit, and agent memory file optimization.
#[derive(Parser, Debug)]
#[command(name = "mpm", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
enum Command {
    /// Run an agent-orchestration service in miniature and print each figure beside the
    /// performance guide's (exit 1 when a budget fails).
    Demo(demo::DemoArgs),
    /// The demo's service process, which `mpm demo` starts to time start-up.
    #[command(hide = true)]
    DemoService(demo::ServiceArgs),
    /// The table of a report saved with `mpm demo --json` (what the run printed).
    #[command(hide = true)]
    DemoTable(demo::TableArgs),
    /// Agent memory files (`.claude-mpm/memories`): optimize, analyze, stats.
    #[command(subcommand)]
    Memory(memory::MemoryCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::DemoService(args) => demo::run_service(args),
        Command::DemoTable(args) => demo::run_table(args),
        Command::Memory(cmd) => memory::run(cmd),
    }
}
