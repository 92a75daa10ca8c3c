//! `cargo xtask bench [--quick] [--python] [CRATE]`: runs the declared comparisons, judges
//! them, checks the ratio budgets and writes the summary, the history line and the page.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};

use crate::estimates::{self, Estimate};
use crate::manifest::{self, Group, is_python, report_dir, target_dir};
use crate::summary::{
    self, BudgetKind, BudgetResult, GroupResult, Machine, Measured, Summary, utc_now,
};
use crate::verdict::{self, Figure, label};

pub(crate) const USAGE: &str = "cargo xtask bench [--quick] [--python] [CRATE]";

/// Runs of the Python optimizer per mode.
const PYTHON_RUNS_QUICK: usize = 3;
const PYTHON_RUNS_FULL: usize = 5;

struct Options {
    quick: bool,
    python: bool,
    krate: Option<String>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        quick: false,
        python: false,
        krate: None,
    };
    for a in args {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--python" => o.python = true,
            c if !c.starts_with('-') && o.krate.is_none() => {
                o.krate = Some(c.strip_prefix("mpm-").unwrap_or(c).to_owned());
            }
            other => bail!("unknown argument {other:?}\nusage: {USAGE}"),
        }
    }
    Ok(o)
}

/// The command a person typed, for the summary.
fn command_line(o: &Options) -> String {
    let mut s = String::from("cargo xtask bench");
    if o.quick {
        s.push_str(" --quick");
    }
    if o.python {
        s.push_str(" --python");
    }
    if let Some(k) = &o.krate {
        s.push(' ');
        s.push_str(k);
    }
    s
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let all = manifest::groups()?;
    let budgets = manifest::budgets(&all)?;
    let groups: Vec<Group> = match &o.krate {
        None => all.clone(),
        Some(k) => {
            let picked: Vec<Group> = all.iter().filter(|g| &g.krate == k).cloned().collect();
            if picked.is_empty() {
                let crates: Vec<&str> = all
                    .iter()
                    .map(|g| g.krate.as_str())
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                bail!(
                    "no group of crate {k:?} in benches/comparisons.toml (crates: {})",
                    crates.join(", ")
                );
            }
            picked
        }
    };
    let dir = report_dir();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = dir.join("criterion.log");
    fs::write(&log, "").with_context(|| format!("creating {}", log.display()))?;
    let mut machine = Machine::now();
    let date = utc_now();
    let mode = if o.quick { "quick" } else { "full" };
    let durations_path = dir.join("durations.json");
    let mut durations: HashMap<String, HashMap<String, f64>> = fs::read_to_string(&durations_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let known = durations.get(mode).cloned().unwrap_or_default();
    let estimate = |g: &Group| {
        known.get(&g.name).copied().unwrap_or(if o.quick {
            g.seconds_quick
        } else {
            g.seconds_quick * 3.0
        })
    };
    let benchmarks: usize = groups.iter().map(|g| g.criterion_ids().count()).sum();
    let mut crates: Vec<&str> = Vec::new();
    for g in &groups {
        if !crates.contains(&g.krate.as_str()) {
            crates.push(&g.krate);
        }
    }
    let total: f64 = groups.iter().map(estimate).sum();
    println!(
        "{}: {} groups ({benchmarks} benchmarks) of {}{}; about {} of measurement after the build; criterion's output goes to {}",
        command_line(&o),
        groups.len(),
        crates.join(", "),
        if o.python {
            ", and claude-mpm's Python optimizer"
        } else {
            ""
        },
        minutes(total),
        log.display()
    );

    let targets = bench_targets(&groups);
    let built = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = Command::new(&cargo);
    build.args(["bench", "--package", "mpm-benches", "--no-run"]);
    for t in &targets {
        build.args(["--bench", t]);
    }
    run_to_log(&mut build, &log, "building the benches")?;
    println!("built in {}", minutes(built.elapsed().as_secs_f64()));

    let started = SystemTime::now();
    let measuring = Instant::now();
    let mut progress = Progress {
        done: 0,
        count: groups.len(),
        spent: 0.0,
        estimated_done: 0.0,
        estimated_total: total,
        measured: HashMap::new(),
    };
    for t in &targets {
        let in_target: Vec<&Group> = groups.iter().filter(|g| &g.bench_target() == t).collect();
        run_target(
            &cargo,
            t,
            &in_target,
            o.quick,
            &log,
            &mut progress,
            &estimate,
        )?;
    }

    let mut results = estimates::read_since(&target_dir().join("criterion"), started)?;
    if o.python && groups.iter().any(|g| g.peers.iter().any(|p| is_python(p))) {
        let runs = if o.quick {
            PYTHON_RUNS_QUICK
        } else {
            PYTHON_RUNS_FULL
        };
        println!("timing claude-mpm's Python optimizer, {runs} runs of about 5 s each");
        let file = dir.join("python/engineer_agent.md");
        fs::create_dir_all(dir.join("python"))?;
        crate::harness::memory_file(80 * 1024, &file, &log)?;
        let e = crate::python::time(&file, runs, &log)?;
        for g in &groups {
            for p in g.peers.iter().filter(|p| is_python(p)) {
                results.insert(p.clone(), e);
            }
        }
    }
    println!(
        "measured in {} (estimated {})",
        minutes(measuring.elapsed().as_secs_f64()),
        minutes(total)
    );
    durations
        .entry(mode.to_owned())
        .or_default()
        .extend(progress.measured);
    let _ = fs::write(&durations_path, serde_json::to_string_pretty(&durations)?);

    machine.load_after = summary::load_average();
    let mut summary = judge(&groups, &results, &budgets, o.python);
    summary.date = date;
    summary.command = command_line(&o);
    summary.machine = machine;
    summary
        .budgets
        .extend(crate::budgets::last_results(&budgets));
    let summary_path = dir.join("summary.json");
    summary.write(&summary_path)?;
    let history_path = dir.join("history.jsonl");
    summary::append_history(&history_path, &summary)?;
    let page = dir.join("index.html");
    summary::write_atomic(
        &page,
        crate::html::page(&summary, &summary::read_history(&history_path)).as_bytes(),
    )?;
    print_summary(&summary, &page, &summary_path, &log);
    // The instruction budgets are `cargo xtask budgets`' to enforce; here they are only shown.
    let breaches: Vec<&BudgetResult> = summary
        .budgets
        .iter()
        .filter(|b| !b.ok && b.kind == BudgetKind::Ratio)
        .collect();
    if !breaches.is_empty() {
        let lines: Vec<String> = breaches.iter().map(|b| breach_line(b)).collect();
        bail!("budget breached:\n{}", lines.join("\n"));
    }
    if !summary.missing.is_empty() {
        bail!(
            "declared benchmarks produced no figure (renamed? see {}): {}",
            log.display(),
            summary.missing.join(", ")
        );
    }
    Ok(())
}

pub(crate) fn breach_line(b: &BudgetResult) -> String {
    format!(
        "  {}: limit {}, actual {}",
        b.name,
        fmt_limit(b),
        b.actual
            .map_or_else(|| "not measured".to_owned(), |a| format!("{a:.3}"))
    )
}

fn fmt_limit(b: &BudgetResult) -> String {
    match b.kind {
        BudgetKind::Ratio => format!("{:.3} (ours / peer, time per op)", b.limit),
        BudgetKind::Instructions => format!(
            "{:.1} instructions per op (+{:.0}% tolerance)",
            b.limit,
            manifest::INSTRUCTION_TOLERANCE * 100.0
        ),
    }
}

/// The bench targets of the groups, in the order the groups are declared.
fn bench_targets(groups: &[Group]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in groups {
        let t = g.bench_target();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// `^(id|id|...)$`: criterion's filter for exactly these ids.
fn filter<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    let escaped: Vec<String> = ids
        .map(|id| {
            id.chars()
                .flat_map(|c| {
                    let special = "\\.+*?()|[]{}^$".contains(c);
                    special.then_some('\\').into_iter().chain([c])
                })
                .collect()
        })
        .collect();
    format!("^({})$", escaped.join("|"))
}

struct Progress {
    done: usize,
    count: usize,
    /// Seconds spent on finished groups.
    spent: f64,
    /// The estimates of the finished groups.
    estimated_done: f64,
    estimated_total: f64,
    measured: HashMap<String, f64>,
}

impl Progress {
    fn finish(&mut self, group: &Group, seconds: f64, estimate: f64, missing: usize) {
        self.done += 1;
        self.spent += seconds;
        self.estimated_done += estimate;
        self.measured.insert(group.name.clone(), seconds);
        // The estimates scaled by how fast this machine has been so far.
        let pace = if self.estimated_done > 0.0 {
            self.spent / self.estimated_done
        } else {
            1.0
        };
        let left = (self.estimated_total - self.estimated_done).max(0.0) * pace;
        let missing = if missing > 0 {
            format!(" ({missing} declared benchmarks gave no figure)")
        } else {
            String::new()
        };
        println!(
            "[{:>2}/{}] {:<10} {:<32} {:>6}{missing}; about {} left",
            self.done,
            self.count,
            group.krate,
            group.name,
            format!("{seconds:.0} s"),
            minutes(left)
        );
    }
}

fn minutes(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// Runs a command with its output appended to the log.
fn run_to_log(cmd: &mut Command, log: &Path, what: &str) -> Result<()> {
    let f = fs::OpenOptions::new().append(true).open(log)?;
    let status = cmd
        .stdout(f.try_clone()?)
        .stderr(f)
        .status()
        .with_context(|| format!("could not start {what}"))?;
    if !status.success() {
        bail!(
            "{what} failed ({status}); the output is in {}",
            log.display()
        );
    }
    Ok(())
}

/// Runs one bench target on exactly the declared ids, its output to the log, a progress line
/// whenever one of its groups is done.
fn run_target(
    cargo: &str,
    target: &str,
    groups: &[&Group],
    quick: bool,
    log: &Path,
    progress: &mut Progress,
    estimate: &dyn Fn(&Group) -> f64,
) -> Result<()> {
    let mut cmd = Command::new(cargo);
    cmd.args([
        "bench",
        "--package",
        "mpm-benches",
        "--bench",
        target,
        "--",
        "--noplot",
    ]);
    if quick {
        cmd.arg("--quick");
    }
    cmd.arg(filter(groups.iter().flat_map(|g| g.criterion_ids())));
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start the {target} benches"))?;
    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|r| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);
    let mut out = fs::OpenOptions::new().append(true).open(log)?;
    let owner: HashMap<&str, usize> = groups
        .iter()
        .enumerate()
        .flat_map(|(i, g)| g.criterion_ids().map(move |id| (id, i)))
        .collect();
    let mut pending: Vec<HashSet<&str>> =
        groups.iter().map(|g| g.criterion_ids().collect()).collect();
    let mut reported = vec![false; groups.len()];
    let mut current: Option<&str> = None;
    let mut since = Instant::now();
    let finish_id = |id: &str,
                     pending: &mut Vec<HashSet<&str>>,
                     reported: &mut Vec<bool>,
                     since: &mut Instant,
                     progress: &mut Progress| {
        let Some(&i) = owner.get(id) else { return };
        pending[i].remove(id);
        if pending[i].is_empty() && !reported[i] {
            reported[i] = true;
            progress.finish(
                groups[i],
                since.elapsed().as_secs_f64(),
                estimate(groups[i]),
                0,
            );
            *since = Instant::now();
        }
    };
    for line in rx {
        let _ = writeln!(out, "{line}");
        let Some(rest) = line.strip_prefix("Benchmarking ") else {
            continue;
        };
        let id = rest.split(':').next().unwrap_or(rest).trim();
        let Some((&known, _)) = owner.get_key_value(id) else {
            continue;
        };
        if current != Some(known) {
            if let Some(prev) = current {
                finish_id(prev, &mut pending, &mut reported, &mut since, progress);
            }
            current = Some(known);
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait()?;
    if let Some(prev) = current {
        finish_id(prev, &mut pending, &mut reported, &mut since, progress);
    }
    for (i, g) in groups.iter().enumerate() {
        if !reported[i] {
            progress.finish(
                g,
                since.elapsed().as_secs_f64(),
                estimate(g),
                pending[i].len(),
            );
            since = Instant::now();
        }
    }
    if !status.success() {
        bail!(
            "the {target} benches failed ({status}); the output is in {}",
            log.display()
        );
    }
    Ok(())
}

/// Every group's figures, every comparison judged, every ratio budget checked.
fn judge(
    groups: &[Group],
    results: &HashMap<String, Estimate>,
    budgets: &manifest::Budgets,
    python: bool,
) -> Summary {
    let mut out = Summary {
        date: String::new(),
        command: String::new(),
        machine: Machine::now(),
        groups: Vec::new(),
        comparisons: Vec::new(),
        budgets: Vec::new(),
        missing: Vec::new(),
    };
    let figure = |id: &str, g: &Group| {
        results.get(id).map(|e| Measured {
            id: id.to_owned(),
            label: label(id),
            figure: Figure::from_estimate(e, g.unit),
        })
    };
    for g in groups {
        let Some(ours) = figure(&g.ours, g) else {
            out.missing.push(g.ours.clone());
            continue;
        };
        let mut peers = Vec::new();
        for p in &g.peers {
            match figure(p, g) {
                Some(m) => {
                    out.comparisons.push(verdict::judge(
                        &g.name,
                        &g.krate,
                        (&g.ours, ours.figure),
                        (p, m.figure),
                        g.unit,
                    ));
                    peers.push(m);
                }
                None if is_python(p) && !python => {}
                None => out.missing.push(p.clone()),
            }
        }
        out.groups.push(GroupResult {
            name: g.name.clone(),
            krate: g.krate.clone(),
            what: g.what.clone(),
            unit: g.unit,
            ours,
            peers,
        });
    }
    let ran: HashSet<&str> = groups.iter().flat_map(|g| g.criterion_ids()).collect();
    for b in &budgets.ratio {
        if !ran.contains(b.ours.as_str()) {
            continue;
        }
        let actual = out
            .comparisons
            .iter()
            .find(|c| c.ours == b.ours && c.peer == b.peer)
            .map(verdict::Comparison::time_ratio);
        out.budgets.push(BudgetResult {
            name: b.name.clone(),
            kind: BudgetKind::Ratio,
            krate: b.krate.clone(),
            limit: b.max,
            actual,
            ok: actual.is_some_and(|a| a <= b.max),
        });
    }
    out
}

/// One screen: a line per group with its verdicts, the budgets, where everything is.
fn print_summary(s: &Summary, page: &Path, summary: &Path, log: &Path) {
    println!();
    println!("{} · {} UTC · {}", s.command, s.date, s.machine.describe());
    for g in &s.groups {
        let verdicts: Vec<String> = s
            .comparisons
            .iter()
            .filter(|c| c.group == g.name)
            .map(short)
            .collect();
        println!("  {:<10} {:<30} {}", g.krate, g.name, verdicts.join("; "));
    }
    let ratio: Vec<&BudgetResult> = s
        .budgets
        .iter()
        .filter(|b| b.kind == BudgetKind::Ratio)
        .collect();
    let instr: Vec<&BudgetResult> = s
        .budgets
        .iter()
        .filter(|b| b.kind == BudgetKind::Instructions)
        .collect();
    let count = |v: &[&BudgetResult]| {
        (
            v.iter().filter(|b| b.ok).count(),
            v.iter().filter(|b| !b.ok).count(),
        )
    };
    let (ok, bad) = count(&ratio);
    println!("budgets: ratio {ok} ok, {bad} breached");
    let measured = instr.iter().filter(|b| b.actual.is_some()).count();
    if measured == 0 {
        println!(
            "         instructions: not measured here; `cargo xtask budgets` checks them under callgrind"
        );
    } else {
        let (ok, bad) = count(&instr);
        println!("         instructions (last `cargo xtask budgets`): {ok} ok, {bad} breached");
    }
    for b in s
        .budgets
        .iter()
        .filter(|b| !b.ok && b.kind == BudgetKind::Ratio)
    {
        println!("{}", breach_line(b));
    }
    if !s.missing.is_empty() {
        println!("no figure for: {}", s.missing.join(", "));
    }
    println!("page: {}", page.display());
    println!(
        "summary: {} · criterion's output: {}",
        summary.display(),
        log.display()
    );
}

/// "2.10x faster than bb8", "1.30x slower than quick_cache", "≈ moka".
fn short(c: &verdict::Comparison) -> String {
    let factor = if c.ratio >= 1.0 {
        c.ratio
    } else {
        1.0 / c.ratio
    };
    let peer = label(&c.peer);
    match c.outcome {
        verdict::Outcome::Faster => format!("{factor:.2}x faster than {peer}"),
        verdict::Outcome::Slower => format!("{factor:.2}x slower than {peer}"),
        verdict::Outcome::NoClearDifference => format!("no clear difference from {peer}"),
    }
}

/// Where the summary of a run is, for `cargo xtask report`.
pub(crate) fn summary_path() -> PathBuf {
    report_dir().join("summary.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_matches_exactly_the_ids() {
        let f = filter(["pool_get_drop/mpm/4x16", "counter_inc/mpm"].into_iter());
        assert_eq!(f, "^(pool_get_drop/mpm/4x16|counter_inc/mpm)$");
        assert_eq!(filter(["a.b(c)"].into_iter()), "^(a\\.b\\(c\\))$");
    }

    #[test]
    fn a_missing_peer_is_named_and_a_breach_is_not_ok() {
        let g = Group {
            krate: "cache".into(),
            name: "l1_hot_get".into(),
            what: "get".into(),
            unit: manifest::Unit::Time,
            ours: "l1_hot_get/mpm".into(),
            peers: vec!["l1_hot_get/quick_cache".into(), "l1_hot_get/moka".into()],
            seconds_quick: 1.0,
        };
        let e = |m: f64| Estimate {
            median: m,
            lower: m * 0.95,
            upper: m * 1.05,
            elements: None,
        };
        let results: HashMap<String, Estimate> = [
            ("l1_hot_get/mpm".to_owned(), e(30.0)),
            ("l1_hot_get/quick_cache".to_owned(), e(20.0)),
        ]
        .into();
        let budgets = manifest::Budgets {
            ratio: vec![manifest::RatioBudget {
                name: "cache: l1 get vs quick_cache".into(),
                krate: "cache".into(),
                ours: "l1_hot_get/mpm".into(),
                peer: "l1_hot_get/quick_cache".into(),
                max: 1.2,
            }],
            instructions: vec![],
        };
        let s = judge(&[g], &results, &budgets, false);
        assert_eq!(s.missing, ["l1_hot_get/moka"]);
        assert_eq!(s.comparisons.len(), 1);
        assert_eq!(
            s.comparisons[0].verdict,
            "mpm 1.50x slower than quick_cache (time per op)"
        );
        assert_eq!(s.budgets.len(), 1);
        assert!(!s.budgets[0].ok);
        assert_eq!(s.budgets[0].actual, Some(1.5));
        assert!(breach_line(&s.budgets[0]).contains("limit 1.200"));
    }
}
