//! Repository automation, run as `cargo xtask <command>`.
//!
//! - `cargo xtask bench [--quick] [FILTER]`: runs the criterion benchmarks in `benches/`, ours
//!   beside the peers, then prints each group's medians with the ratio ours / peer; `--quick`
//!   runs each for a short time (criterion's `--quick`).
//! - `cargo xtask trace --trace PATH --capacity N[,N...] [--json]`: replays a cache access trace
//!   and prints the hit ratios of mpm-cache's L1, quick_cache, moka and an exact LRU.
//!
//! The repository rules live in `tidy.rs` as a test, so `cargo test --workspace` checks them.
#![forbid(unsafe_code)]

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

mod report;
mod tidy;
mod trace;

const USAGE: &str = "usage: cargo xtask bench [--quick] [FILTER]\n       cargo xtask trace --trace PATH [--format cache2k|lirs|arc] --capacity N[,N...] [--json]";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    match command.as_str() {
        "bench" => bench(rest),
        "trace" => trace::run(rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

fn bench(args: &[String]) -> Result<()> {
    let mut quick = false;
    let mut filter = None;
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            f if !f.starts_with('-') && filter.is_none() => filter = Some(f.to_owned()),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.args(["bench", "--package", "mpm-benches", "--benches", "--"]);
    if let Some(f) = &filter {
        cmd.arg(f);
    }
    if quick {
        cmd.args(["--quick", "--noplot"]);
    }
    let started = std::time::SystemTime::now();
    let status = cmd.status().context("could not start cargo bench")?;
    if !status.success() {
        bail!("cargo bench failed ({status})");
    }
    report::print(started)
}
