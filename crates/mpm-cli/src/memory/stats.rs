//! `mpm memory stats`: sizes, sections and entries per file, and what `optimize` would do.

use std::io::Write;
use std::process::ExitCode;

use mpm_memory_opt::{Document, LineKind, Optimizer, Options, agent_id};
use serde_json::{Value, json};

use super::args::StatsArgs;
use super::optimize::error_value;
use super::paths::{expand, progress};

/// One file's figures.
struct Stat {
    bytes: usize,
    chars: usize,
    lines: usize,
    sections: usize,
    entries: usize,
    /// Entries the `default` profile would remove or merge.
    optimizable: usize,
    /// Whether the `default` profile would change the file at all.
    would_change: bool,
}

fn stat(bytes: &[u8], optimizer: &Optimizer) -> Result<Stat, String> {
    let doc = Document::parse(bytes).map_err(|e| e.to_string())?;
    let text = doc.render();
    let outcome = optimizer.optimize_text(&text);
    let r = &outcome.report;
    Ok(Stat {
        bytes: bytes.len(),
        chars: text.chars().count(),
        lines: doc.lines.len(),
        sections: doc.sections().len(),
        entries: (0..doc.lines.len())
            .filter(|&i| matches!(doc.kind(i), LineKind::Bullet { .. }))
            .count(),
        optimizable: r.duplicates_removed + r.items_consolidated + r.size_limit_removed,
        would_change: outcome.output != text,
    })
}

/// Prints the figures of every file `a` names.
pub(crate) fn run(a: &StatsArgs) -> ExitCode {
    let (files, errors) = expand(&a.paths, a.force);
    let mut failed = !errors.is_empty();
    let mut values: Vec<Value> = errors.iter().map(|(p, m)| error_value(p, m)).collect();
    for (p, m) in &errors {
        eprintln!("error: {}: {m}", p.display());
    }
    let optimizer = Optimizer::new(Options {
        size_limit: Some(a.max_size),
        ..Options::default()
    });
    let bar = progress(files.len(), a.json);
    let mut stdout = std::io::stdout().lock();
    if !a.json && !files.is_empty() {
        let _ = writeln!(
            stdout,
            "{:>10} {:>10} {:>7} {:>8} {:>8} {:>11} {:>9}  file",
            "bytes", "chars", "lines", "sections", "entries", "optimizable", "of limit"
        );
    }
    for path in &files {
        bar.inc(1);
        let result = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| stat(&b, &optimizer))
            .map_err(|e| format!("{}: {e}", path.display()));
        match result {
            Ok(s) => {
                let share = s.bytes as f64 / a.max_size as f64 * 100.0;
                if a.json {
                    values.push(json!({
                        "path": path,
                        "agent_id": path.file_name().and_then(|n| n.to_str()).and_then(agent_id),
                        "bytes": s.bytes,
                        "chars": s.chars,
                        "lines": s.lines,
                        "sections": s.sections,
                        "entries": s.entries,
                        "optimizable_entries": s.optimizable,
                        "limit_bytes": a.max_size,
                        "percent_of_limit": (share * 10.0).round() / 10.0,
                        "needs_optimization": s.would_change,
                    }));
                } else {
                    bar.suspend(|| {
                        let _ = writeln!(
                            stdout,
                            "{:>10} {:>10} {:>7} {:>8} {:>8} {:>11} {:>8.1}%  {}{}",
                            s.bytes,
                            s.chars,
                            s.lines,
                            s.sections,
                            s.entries,
                            s.optimizable,
                            share,
                            path.display(),
                            if s.would_change {
                                "  (optimize would change it)"
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
