//! `mpm memory`: optimize, analyze and describe agent memory files.

mod args;
mod optimize;
mod paths;
mod stats;

use std::process::ExitCode;

use clap::Subcommand;

use args::{CommonArgs, OptimizeArgs, StatsArgs};

/// The `memory` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum MemoryCommand {
    /// Remove duplicates, merge similar entries, order by priority; back up, then replace.
    Optimize(OptimizeArgs),
    /// Show what `optimize` would do, writing nothing.
    Analyze(CommonArgs),
    /// Sizes, sections and entries per file, and whether `optimize` would change it.
    Stats(StatsArgs),
}

/// Runs a `memory` subcommand.
pub(crate) fn run(cmd: MemoryCommand) -> ExitCode {
    match cmd {
        MemoryCommand::Optimize(a) => optimize::run(&a.common, a.dry_run, a.diff, false),
        MemoryCommand::Analyze(a) => optimize::run(&a, true, false, true),
        MemoryCommand::Stats(a) => stats::run(&a),
    }
}
