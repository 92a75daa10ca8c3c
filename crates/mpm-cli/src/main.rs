//! `mpm`: the command-line front of the mpm toolkit.
//!
//! `mpm memory optimize|analyze|stats PATH...` optimizes agent memory files (a file, or a
//! `.claude-mpm/memories` directory) with `mpm-memory-opt`.
//!
//! Exit codes: 0 done, 1 an error on some file (the others are still processed) or nothing to
//! work on, 2 usage error.
//!
//! Each subcommand lives in its own module; adding one is a variant of [`Command`] and a module.
#![forbid(unsafe_code)]

mod memory;
mod wording;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mpm: agent memory file optimization (duplicates, consolidation, priority order, statistics).
#[derive(Parser, Debug)]
#[command(name = "mpm", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
enum Command {
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
        Command::Memory(cmd) => memory::run(cmd),
    }
}
