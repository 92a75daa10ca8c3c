//! `mpm`: the command-line front of the mpm toolkit.
//!
//! `mpm memory optimize|analyze|stats PATH...` optimizes agent memory files (a file, or a
//! `.claude-mpm/memories` directory) with `mpm-memory-opt`.
//!
//! Exit codes: 0 done, 1 an error on some file (the others are still processed), 2 usage error.
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use mpm_memory_opt::{
    Action, Difflib, Document, Indel, MemoryStore, Optimizer, Options, Report, Similarity,
    SymlinkPolicy, agent_id,
};
use serde_json::{Value, json};

/// mpm: performance tooling for agent-orchestration services.
#[derive(Parser, Debug)]
#[command(name = "mpm", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Agent memory files (`.claude-mpm/memories`).
    #[command(subcommand)]
    Memory(MemoryCommand),
}

#[derive(Subcommand, Debug)]
enum MemoryCommand {
    /// Remove duplicates, merge similar entries, order by priority; back up, then replace.
    Optimize(OptimizeArgs),
    /// Show what `optimize` would do, writing nothing.
    Analyze(CommonArgs),
    /// Sizes, sections and entries per file.
    Stats(StatsArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProfileArg {
    /// Ours: nothing dropped, layout kept, ties keep their order.
    Default,
    /// claude-mpm v4.0.29's output, byte for byte apart from the timestamp.
    ClaudeMpm,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MetricArg {
    /// Bit-parallel indel ratio (fast; the default).
    Indel,
    /// Python's difflib ratio.
    Difflib,
}

#[derive(Args, Debug)]
struct CommonArgs {
    /// Memory files or memories directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Which optimizer.
    #[arg(long, value_enum, default_value = "default")]
    profile: ProfileArg,
    /// Consolidation threshold, 0..=1 (default 0.70; `default` profile only).
    #[arg(long, value_parser = parse_ratio)]
    threshold: Option<f64>,
    /// Near-duplicate threshold, 0..=1 (default 0.85; `default` profile only).
    #[arg(long, value_parser = parse_ratio)]
    near_threshold: Option<f64>,
    /// Similarity metric of the `default` profile.
    #[arg(long, value_enum, default_value = "indel")]
    metric: MetricArg,
    /// Size limit per file, e.g. `80KB`, `1MB`, `65536` (KB = 1024 bytes).
    #[arg(long, value_parser = parse_size, default_value = "80KB")]
    max_size: usize,
    /// Refuse files larger than this (default 64MB).
    #[arg(long, value_parser = parse_size, default_value = "64MB")]
    hard_limit: usize,
    /// Follow symbolic links (default: refuse them).
    #[arg(long)]
    follow_symlinks: bool,
    /// Print a JSON array, one object per file.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct OptimizeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print a unified diff of each change.
    #[arg(long)]
    diff: bool,
}

#[derive(Args, Debug)]
struct StatsArgs {
    /// Memory files or memories directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Size limit the `% of limit` column refers to.
    #[arg(long, value_parser = parse_size, default_value = "80KB")]
    max_size: usize,
    /// Print a JSON array, one object per file.
    #[arg(long)]
    json: bool,
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("`{s}` is not between 0 and 1"))
    }
}

fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let (num, mult) = [
        ("KIB", 1024),
        ("MIB", 1 << 20),
        ("GIB", 1 << 30),
        ("KB", 1024),
        ("MB", 1 << 20),
        ("GB", 1 << 30),
        ("K", 1024),
        ("M", 1 << 20),
        ("G", 1 << 30),
        ("B", 1),
    ]
    .iter()
    .find_map(|(suffix, m)| {
        upper
            .strip_suffix(suffix)
            .map(|n| (n.trim().to_owned(), *m))
    })
    .unwrap_or((upper.clone(), 1usize));
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (examples: 80KB, 1MB, 65536)"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("`{s}` is not a size"));
    }
    Ok((v * mult as f64) as usize)
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
        Command::Memory(MemoryCommand::Optimize(a)) => {
            run_optimize(&a.common, a.dry_run, a.diff, false)
        }
        Command::Memory(MemoryCommand::Analyze(a)) => run_optimize(&a, true, false, true),
        Command::Memory(MemoryCommand::Stats(a)) => run_stats(&a),
    }
}

fn options(a: &CommonArgs) -> Result<Options, String> {
    let mut o = match a.profile {
        ProfileArg::Default => Options::default(),
        ProfileArg::ClaudeMpm => {
            if a.threshold.is_some() || a.near_threshold.is_some() {
                return Err(
                    "--threshold and --near-threshold apply to the default profile only (claude-mpm's thresholds are fixed)"
                        .to_owned(),
                );
            }
            Options::claude_mpm()
        }
    };
    if let Some(t) = a.threshold {
        o.consolidation = Some(t);
    }
    if let Some(t) = a.near_threshold {
        o.near_duplicates = Some(t);
    }
    o.metric = match a.metric {
        MetricArg::Indel => Arc::new(Indel) as Arc<dyn Similarity>,
        MetricArg::Difflib => Arc::new(Difflib),
    };
    o.size_limit = Some(a.max_size);
    o.max_file_bytes = a.hard_limit as u64;
    o.symlinks = if a.follow_symlinks {
        SymlinkPolicy::Follow
    } else {
        SymlinkPolicy::Refuse
    };
    Ok(o)
}

/// Expands directories into their memory files; keeps files as given.
fn expand(paths: &[PathBuf], errors: &mut Vec<(PathBuf, String)>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            match MemoryStore::new(p, Options::default()).files() {
                Ok(files) => out.extend(files),
                Err(e) => errors.push((p.clone(), e.to_string())),
            }
        } else {
            out.push(p.clone());
        }
    }
    out
}

fn progress(n: usize, json: bool) -> ProgressBar {
    if n < 2 || json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(n as u64).with_style(style)
}

fn error_value(path: &Path, message: &str) -> Value {
    json!({
        "path": path,
        "agent_id": path.file_name().and_then(|n| n.to_str()).and_then(agent_id),
        "success": false,
        "error": message,
    })
}

fn opportunities(r: &Report) -> Vec<String> {
    let mut per: Vec<(String, usize, usize, usize)> = Vec::new();
    for a in &r.audit {
        let i = match per.iter().position(|p| p.0 == a.section) {
            Some(i) => i,
            None => {
                per.push((a.section.clone(), 0, 0, 0));
                per.len() - 1
            }
        };
        match a.action {
            Action::ExactDuplicate | Action::NearDuplicate => per[i].1 += 1,
            Action::Consolidated => per[i].2 += 1,
            Action::SizeLimit => per[i].3 += 1,
            Action::SectionMerged => {}
        }
    }
    let mut out = Vec::new();
    for (s, d, c, z) in per {
        if d > 0 {
            out.push(format!("{s}: {d} duplicate items"));
        }
        if c > 0 {
            out.push(format!("{s}: {c} items can be consolidated"));
        }
        if z > 0 {
            out.push(format!("{s}: {z} items over the size limit"));
        }
    }
    if r.sections_merged > 0 {
        out.push(format!(
            "{} repeated sections can be merged",
            r.sections_merged
        ));
    }
    out
}

fn run_optimize(a: &CommonArgs, dry_run: bool, diff: bool, analyze: bool) -> ExitCode {
    let opts = match options(a) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
    };
    let optimizer = Optimizer::new(opts.clone());
    let mut errors = Vec::new();
    let files = expand(&a.paths, &mut errors);
    let bar = progress(files.len(), a.json);
    let mut stdout = std::io::stdout().lock();
    let mut values: Vec<Value> = errors.iter().map(|(p, m)| error_value(p, m)).collect();
    for (p, m) in &errors {
        bar.suspend(|| eprintln!("error: {}: {m}", p.display()));
    }
    let mut failed = !errors.is_empty();
    for path in &files {
        bar.set_message(path.display().to_string());
        match optimizer.optimize_file_full(path, dry_run) {
            Ok(outcome) => {
                let report = &outcome.report;
                if a.json {
                    let mut v = serde_json::to_value(report).unwrap_or(Value::Null);
                    if analyze && let Value::Object(m) = &mut v {
                        m.insert("opportunities".into(), json!(opportunities(report)));
                    }
                    values.push(v);
                } else {
                    bar.suspend(|| {
                        print_report(&mut stdout, path, report, analyze);
                        if diff {
                            print_diff(&mut stdout, path, &outcome.before, &outcome.after);
                        }
                    });
                }
            }
            Err(e) => {
                failed = true;
                bar.suspend(|| eprintln!("error: {e}"));
                if a.json {
                    values.push(error_value(path, &e.to_string()));
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if a.json {
        let text = serde_json::to_string_pretty(&values).unwrap_or_else(|_| "[]".to_owned());
        let _ = writeln!(stdout, "{text}");
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_report(out: &mut impl Write, path: &Path, r: &Report, analyze: bool) {
    let mode = if analyze {
        " (analysis, nothing written)"
    } else if r.dry_run {
        " (dry run, nothing written)"
    } else if r.written {
        ""
    } else {
        " (unchanged)"
    };
    let _ = writeln!(
        out,
        "{}: {} -> {} bytes ({:+.1}%), {} duplicates removed, {} consolidated, {} sections reordered{}{mode}",
        path.display(),
        r.original_bytes,
        r.optimized_bytes,
        -r.size_reduction_percent,
        r.duplicates_removed,
        r.items_consolidated,
        r.items_reordered,
        if r.size_limit_removed > 0 {
            format!(", {} removed for size", r.size_limit_removed)
        } else {
            String::new()
        },
    );
    if analyze {
        for o in opportunities(r) {
            let _ = writeln!(out, "  {o}");
        }
    }
    if let Some(b) = &r.backup_created {
        let _ = writeln!(out, "  backup: {}", b.display());
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  warning: {}", w.message);
    }
}

fn print_diff(out: &mut impl Write, path: &Path, before: &str, after: &str) {
    if after == before {
        return;
    }
    let name = path.display().to_string();
    let diff = similar::TextDiff::from_lines(before, after);
    let _ = write!(
        out,
        "{}",
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("a/{name}"), &format!("b/{name}"))
    );
}

fn run_stats(a: &StatsArgs) -> ExitCode {
    let mut errors = Vec::new();
    let files = expand(&a.paths, &mut errors);
    let mut failed = !errors.is_empty();
    let mut values: Vec<Value> = errors.iter().map(|(p, m)| error_value(p, m)).collect();
    for (p, m) in &errors {
        eprintln!("error: {}: {m}", p.display());
    }
    let bar = progress(files.len(), a.json);
    let mut stdout = std::io::stdout().lock();
    if !a.json && !files.is_empty() {
        let _ = writeln!(
            stdout,
            "{:>10} {:>10} {:>7} {:>8} {:>8} {:>9}  file",
            "bytes", "chars", "lines", "sections", "entries", "of limit"
        );
    }
    for path in &files {
        bar.inc(1);
        let stat = std::fs::read(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|b| {
                Document::parse(&b)
                    .map(|d| (b.len(), d))
                    .map_err(|e| format!("{}: {e}", path.display()))
            });
        match stat {
            Ok((bytes, doc)) => {
                let chars = doc.render().chars().count();
                let entries = (0..doc.lines.len())
                    .filter(|&i| matches!(doc.kind(i), mpm_memory_opt::LineKind::Bullet { .. }))
                    .count();
                let share = bytes as f64 / a.max_size as f64 * 100.0;
                let v = json!({
                    "path": path,
                    "agent_id": path.file_name().and_then(|n| n.to_str()).and_then(agent_id),
                    "bytes": bytes,
                    "chars": chars,
                    "lines": doc.lines.len(),
                    "sections": doc.sections().len(),
                    "entries": entries,
                    "limit_bytes": a.max_size,
                    "percent_of_limit": (share * 10.0).round() / 10.0,
                    "needs_optimization": share > 80.0,
                });
                if a.json {
                    values.push(v);
                } else {
                    bar.suspend(|| {
                        let _ = writeln!(
                            stdout,
                            "{:>10} {:>10} {:>7} {:>8} {:>8} {:>8.1}%  {}{}",
                            bytes,
                            chars,
                            doc.lines.len(),
                            doc.sections().len(),
                            entries,
                            share,
                            path.display(),
                            if share > 80.0 {
                                "  (over 80%: optimize)"
                            } else {
                                ""
                            }
                        );
                    });
                }
            }
            Err(m) => {
                failed = true;
                bar.suspend(|| eprintln!("error: {m}"));
                if a.json {
                    values.push(error_value(path, &m));
                }
            }
        }
    }
    bar.finish_and_clear();
    if a.json {
        let text = serde_json::to_string_pretty(&values).unwrap_or_else(|_| "[]".to_owned());
        let _ = writeln!(stdout, "{text}");
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
