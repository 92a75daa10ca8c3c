//! `mpm`: the command-line front of the mpm toolkit.
//!
//! Its commands arrive with the crates they drive (`mpm memory`, `mpm cache`, `mpm demo`); for
//! now it prints its version and what it is for.
#![forbid(unsafe_code)]

use clap::Parser;

/// mpm: performance tooling for agent-orchestration services.
#[derive(Parser, Debug)]
#[command(name = "mpm", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    println!(
        "mpm {}: no subcommands yet; see `mpm --help`.",
        env!("CARGO_PKG_VERSION")
    );
    Ok(())
}
