//! `cargo xtask budgets`: instructions per operation under valgrind's callgrind, against the
//! limits in `benches/budgets.toml`.
//!
//! Each operation runs in `mpm-ops` at two repetition counts; the difference of the two
//! instruction totals over the difference of the counts is the cost of one operation (the
//! set-up, the same in both runs, cancels). Callgrind counts the instructions the program
//! executes, so the figure repeats exactly for one binary and input: it moves with the
//! compiler (pinned in `rust-toolchain.toml`) and with CPU features chosen at run time, which
//! under valgrind are those of valgrind's emulated CPU, not the host's. mpm-memory-opt takes
//! its AVX2 path when that CPU has AVX2; a budget that depends on it names the path it was
//! measured on (`cpu = "avx2"`), and is skipped, visibly, where valgrind offers another.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};

use crate::manifest::{self, INSTRUCTION_TOLERANCE, InstructionBudget, report_dir};
use crate::summary::{BudgetKind, BudgetResult, write_atomic};

pub(crate) const USAGE: &str = "cargo xtask budgets [CRATE]";

fn results_path() -> PathBuf {
    report_dir().join("budgets.json")
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let krate = match args {
        [] => None,
        [k] if !k.starts_with('-') => Some(k.strip_prefix("mpm-").unwrap_or(k).to_owned()),
        _ => bail!("usage: {USAGE}"),
    };
    let groups = manifest::groups()?;
    let budgets = manifest::budgets(&groups)?;
    let picked: Vec<&InstructionBudget> = budgets
        .instructions
        .iter()
        .filter(|b| krate.as_ref().is_none_or(|k| &b.krate == k))
        .collect();
    if picked.is_empty() {
        bail!("no instruction budget for {krate:?} in benches/budgets.toml");
    }
    let valgrind = Command::new("valgrind")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let Some(valgrind) = valgrind else {
        bail!(
            "valgrind is not installed (on Debian: apt-get install valgrind); the instruction budgets need its callgrind"
        );
    };
    println!(
        "cargo xtask budgets: {} instruction budgets under callgrind ({valgrind}), {:.0}% tolerance; building mpm-ops",
        picked.len(),
        INSTRUCTION_TOLERANCE * 100.0
    );
    let bin = crate::harness::build(None)?;
    let scratch = report_dir().join("callgrind");
    fs::create_dir_all(&scratch)?;
    let cpu = callgrind_cpu(&bin)?;
    // Two valgrinds at a time: each is single-threaded.
    let jobs: Vec<(usize, u64)> = picked
        .iter()
        .enumerate()
        .filter(|(_, b)| b.cpu.as_ref().is_none_or(|c| c == &cpu))
        .flat_map(|(i, b)| b.iterations.iter().map(move |&n| (i, n)))
        .collect();
    let totals: Mutex<Vec<(usize, u64, Result<u64>)>> = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let job = {
                        let mut n = next.lock().expect("not poisoned");
                        let j = jobs.get(*n).copied();
                        *n += 1;
                        j
                    };
                    let Some((i, n)) = job else { break };
                    let out = scratch.join(format!("{}.{n}.out", picked[i].op));
                    let r = instructions(&bin, &picked[i].op, n, &out);
                    totals.lock().expect("not poisoned").push((i, n, r));
                }
            });
        }
    });
    let totals = totals.into_inner().expect("not poisoned");
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (i, b) in picked.iter().enumerate() {
        if let Some(c) = b.cpu.as_ref().filter(|c| *c != &cpu) {
            println!(
                "  {:<34} skipped: measured on the {c} path, and valgrind's CPU here takes the {cpu} path",
                b.name
            );
            results.push(result(b, None));
            continue;
        }
        let total = |n: u64| {
            totals
                .iter()
                .find(|t| t.0 == i && t.1 == n)
                .and_then(|t| t.2.as_ref().ok().copied())
        };
        for t in totals.iter().filter(|t| t.0 == i) {
            if let Err(e) = &t.2 {
                errors.push(format!("{} at {}: {e:#}", b.name, t.1));
            }
        }
        let [a, z] = b.iterations;
        let actual = match (total(a), total(z)) {
            (Some(ta), Some(tz)) if z > a => Some((tz as f64 - ta as f64) / (z - a) as f64),
            _ => None,
        };
        let r = result(b, actual);
        println!(
            "  {:<34} limit {:>12.1}  actual {:>12}  {}",
            b.name,
            b.max,
            actual.map_or_else(|| "error".to_owned(), |a| format!("{a:.1}")),
            if r.ok { "ok" } else { "BREACH" }
        );
        results.push(r);
    }
    write_atomic(
        &results_path(),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    if !errors.is_empty() {
        bail!("callgrind failed:\n{}", errors.join("\n"));
    }
    let breaches: Vec<String> = results
        .iter()
        .filter(|r| !r.ok)
        .map(crate::bench::breach_line)
        .collect();
    if !breaches.is_empty() {
        bail!("instruction budget breached:\n{}", breaches.join("\n"));
    }
    println!("all instruction budgets hold");
    Ok(())
}

fn result(b: &InstructionBudget, actual: Option<f64>) -> BudgetResult {
    BudgetResult {
        name: b.name.clone(),
        kind: BudgetKind::Instructions,
        krate: b.krate.clone(),
        limit: b.max,
        actual,
        // Not measured (skipped for the CPU) is not a breach; a failed run is reported apart.
        ok: actual.is_none_or(|a| within(a, b.max)),
    }
}

/// Whether `actual` instructions per op keep to `max` with the tolerance.
fn within(actual: f64, max: f64) -> bool {
    actual <= max * (1.0 + INSTRUCTION_TOLERANCE)
}

/// The path mpm-memory-opt takes under valgrind: `avx2` or `scalar`.
fn callgrind_cpu(bin: &Path) -> Result<String> {
    let out = Command::new("valgrind")
        .args(["-q", "--tool=none"])
        .arg(bin)
        .arg("--cpu")
        .output()
        .context("could not start valgrind")?;
    if !out.status.success() {
        bail!(
            "valgrind mpm-ops --cpu failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The instructions `mpm-ops OP N` executes under callgrind.
fn instructions(bin: &Path, op: &str, n: u64, out: &Path) -> Result<u64> {
    let status = Command::new("valgrind")
        .args([
            "-q",
            "--tool=callgrind",
            "--cache-sim=no",
            "--branch-sim=no",
            "--collect-atstart=no",
            "--toggle-collect=*ops::measured*",
        ])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(bin)
        .arg(op)
        .arg(n.to_string())
        .status()
        .context("could not start valgrind")?;
    if !status.success() {
        bail!("valgrind --tool=callgrind mpm-ops {op} {n} failed ({status})");
    }
    let text = fs::read_to_string(out).with_context(|| format!("reading {}", out.display()))?;
    totals(&text).with_context(|| format!("{} has no totals line", out.display()))
}

/// The `totals:` (or `summary:`) line of a callgrind output file.
fn totals(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The instruction budgets as the last `cargo xtask budgets` left them (not run: no figure).
pub(crate) fn last_results(budgets: &manifest::Budgets) -> Vec<BudgetResult> {
    let last: Vec<BudgetResult> = fs::read_to_string(results_path())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    budgets
        .instructions
        .iter()
        .map(|b| {
            let actual = last
                .iter()
                .find(|r| r.name == b.name)
                .and_then(|r| r.actual);
            result(b, actual)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_callgrind_totals() {
        let text =
            "version: 1\ncmd: mpm-ops lazy.get 10\nevents: Ir\nsummary: 1234\n\ntotals: 1234\n";
        assert_eq!(totals(text), Some(1234));
        assert_eq!(totals("events: Ir\n"), None);
    }

    #[test]
    fn the_tolerance_is_two_percent() {
        assert!(within(102.0, 100.0));
        assert!(!within(102.5, 100.0));
        assert!(!within(105.0, 100.0));
    }
}
