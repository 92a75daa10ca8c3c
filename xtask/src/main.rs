//! Repository automation, run as `cargo xtask <command>`.
//!
//! - `cargo xtask bench [--quick] [--python] [CRATE]`: runs the comparisons declared in
//!   `benches/comparisons.toml` (ours beside the peers, same run), judges each with criterion's
//!   confidence intervals, checks the ratio budgets of `benches/budgets.toml`, and writes
//!   `target/mpm-report/` (`summary.json`, `index.html`, `history.jsonl`, `criterion.log`);
//!   prints one screen of verdicts. `--python` also times claude-mpm's Python optimizer.
//! - `cargo xtask budgets [CRATE]`: instruction counts per operation under callgrind against
//!   the instruction budgets (2% tolerance); CI runs it.
//! - `cargo xtask demo-report [--from FILE]`: runs `mpm demo --json` (release), keeps the report
//!   as `docs/demo.json` and writes the table it printed into the README's demo block (a test
//!   of `mpm-demo` checks that they agree).
//! - `cargo xtask report [--keep] [--write-docs] [--check]`: renders the page again; `--keep`
//!   copies the run's summary to `benches/results/summary.json`; `--write-docs` generates the
//!   README's numbers and `docs/PERFORMANCE.md` from that file; `--check` renders the page in
//!   headless chromium and asserts what it shows.
//! - `cargo xtask trace [--quick] [--filter TEXT] [--threads N] [--trace PATH]...`: replays the
//!   shared cache access traces (or the given ones) at 1%, 5% and 10% of their distinct keys and
//!   prints the hit ratios of mpm-cache's L1, quick_cache, moka, the adaptive policy prototype
//!   (`policy/`) and an exact LRU side by side, then a summary against the adaptive goal.
//!
//! The repository rules live in `tidy.rs` and `docs.rs` as tests, so `cargo test --workspace`
//! checks them.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::{Result, bail};

mod bench;
mod budgets;
mod demo_report;
mod docs;
mod estimates;
mod harness;
mod html;
mod manifest;
mod policy;
mod python;
mod report;
mod summary;
mod tidy;
mod trace;
mod trace_format;
mod trace_replay;
mod verdict;

fn usage() -> String {
    format!(
        "usage: {}\n       {}\n       {}\n       {}\n       {}",
        bench::USAGE,
        budgets::USAGE,
        demo_report::USAGE,
        report::USAGE,
        trace::USAGE
    )
}

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
        bail!("{}", usage());
    };
    match command.as_str() {
        "bench" => bench::run(rest),
        "budgets" => budgets::run(rest),
        "demo-report" => demo_report::run(rest),
        "report" => report::run(rest),
        "trace" => trace::run(rest),
        "-h" | "--help" | "help" => {
            println!("{}", usage());
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{}", usage()),
    }
}
