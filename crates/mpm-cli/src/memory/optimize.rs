//! `mpm memory optimize` and `mpm memory analyze`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use mpm_memory_opt::{Action, FileOptions, Optimizer, Report, agent_id};
use serde_json::{Value, json};

use super::args::CommonArgs;
use super::paths::{expand, progress};
use crate::wording::{count, signed_percent};

/// Optimizes (or, with `dry_run`, only reports on) every file `a` names; `analyze` adds the
/// per-section opportunities.
pub(crate) fn run(a: &CommonArgs, dry_run: bool, diff: bool, analyze: bool) -> ExitCode {
    let opts = match a.options() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
    };
    let optimizer = Optimizer::new(opts);
    let file_options = FileOptions { dry_run };
    let (files, errors) = expand(&a.paths, a.force);
    let bar = progress(files.len(), a.json);
    let mut stdout = std::io::stdout().lock();
    let mut values: Vec<Value> = errors.iter().map(|(p, m)| error_value(p, m)).collect();
    for (p, m) in &errors {
        bar.suspend(|| eprintln!("error: {}: {m}", p.display()));
    }
    let mut failed = !errors.is_empty();
    for path in &files {
        bar.set_message(path.display().to_string());
        match optimizer.optimize_file_full(path, file_options) {
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

/// The JSON object of a file that failed.
pub(crate) fn error_value(path: &Path, message: &str) -> Value {
    json!({
        "path": path,
        "agent_id": path.file_name().and_then(|n| n.to_str()).and_then(agent_id),
        "success": false,
        "error": message,
    })
}

/// Per section: how many entries are duplicates, can be consolidated, or go for size.
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
            out.push(format!(
                "{s}: {}",
                count(d, "duplicate item", "duplicate items")
            ));
        }
        if c > 0 {
            out.push(format!(
                "{s}: {} can be consolidated",
                count(c, "item", "items")
            ));
        }
        if z > 0 {
            out.push(format!(
                "{s}: {} over the size limit",
                count(z, "item", "items")
            ));
        }
    }
    if r.sections_merged > 0 {
        out.push(format!(
            "{} can be merged",
            count(r.sections_merged, "repeated section", "repeated sections")
        ));
    }
    out
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
    let change = if r.original_bytes == 0 {
        0.0
    } else {
        (r.optimized_bytes as f64 - r.original_bytes as f64) / r.original_bytes as f64 * 100.0
    };
    let _ = writeln!(
        out,
        "{}: {} -> {} bytes ({}), {} removed, {} consolidated, {} reordered{}{mode}",
        path.display(),
        r.original_bytes,
        r.optimized_bytes,
        signed_percent(change),
        count(r.duplicates_removed, "duplicate", "duplicates"),
        count(r.items_consolidated, "item", "items"),
        count(r.items_reordered, "section", "sections"),
        if r.size_limit_removed > 0 {
            format!(
                ", {} removed for size",
                count(r.size_limit_removed, "item", "items")
            )
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

/// A unified diff with git's headers: `a/` and `b/` before the path (an absolute path loses its
/// leading `/`, as in `git diff --no-index`).
fn print_diff(out: &mut impl Write, path: &Path, before: &str, after: &str) {
    if after == before {
        return;
    }
    let name = path.display().to_string();
    let name = name.trim_start_matches('/');
    let diff = similar::TextDiff::from_lines(before, after);
    let _ = write!(
        out,
        "{}",
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("a/{name}"), &format!("b/{name}"))
    );
}
