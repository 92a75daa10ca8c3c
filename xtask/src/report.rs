//! The ratio table printed after `cargo xtask bench`: in every criterion group, each peer's
//! median time against ours.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

/// One benchmark's median, read from criterion's `new/estimates.json`.
struct Median {
    group: String,
    bench: String,
    nanos: f64,
}

/// Where criterion writes its results.
fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("xtask sits in the workspace root")
                .join("target")
        },
        PathBuf::from,
    );
    target.join("criterion")
}

/// Every median written since `since`, sorted by group then benchmark. Criterion lays results
/// out as `group/function[/parameter]/new/estimates.json`; a parameter joins the group, so that
/// ours and the peers are compared at the same parameter.
fn medians(dir: &Path, since: SystemTime) -> Result<Vec<Median>> {
    let mut files = Vec::new();
    collect_estimates(dir, &mut files);
    let mut out = Vec::new();
    for file in files {
        if fs::metadata(&file)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m < since)
        {
            continue;
        }
        // .../criterion/<group>/<function>[/<parameter>]/new/estimates.json
        let Ok(rel) = file.strip_prefix(dir) else {
            continue;
        };
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let (group, bench) = match parts.as_slice() {
            [g, f, _new, _file] => (g.clone(), f.clone()),
            [g, f, param, _new, _file] => (format!("{g}/{param}"), f.clone()),
            _ => continue,
        };
        let text =
            fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        let Some(nanos) = json["median"]["point_estimate"].as_f64() else {
            continue;
        };
        out.push(Median {
            group,
            bench,
            nanos,
        });
    }
    out.sort_by(|a, b| (&a.group, &a.bench).cmp(&(&b.group, &b.bench)));
    Ok(out)
}

fn collect_estimates(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "new") {
                let file = path.join("estimates.json");
                if file.is_file() {
                    out.push(file);
                }
            } else if path.file_name().is_some_and(|n| n != "report") {
                collect_estimates(&path, out);
            }
        }
    }
}

fn human(nanos: f64) -> String {
    match nanos {
        n if n < 1e3 => format!("{n:.2} ns"),
        n if n < 1e6 => format!("{:.2} us", n / 1e3),
        n if n < 1e9 => format!("{:.2} ms", n / 1e6),
        n => format!("{:.2} s", n / 1e9),
    }
}

/// Prints, per group, every median; each of our rows (named `mpm...`) also gets its ratio
/// against every peer in the group (ours / peer: below 1 means we are faster).
pub(crate) fn print(since: SystemTime) -> Result<()> {
    let all = medians(&criterion_dir(), since)?;
    if all.is_empty() {
        println!("no criterion results were written by this run");
        return Ok(());
    }
    println!(
        "\n{:<36} {:<28} {:>11}  ours / peer",
        "group", "benchmark", "median"
    );
    let mut start = 0;
    while start < all.len() {
        let group = &all[start].group;
        let end = start
            + all[start..]
                .iter()
                .take_while(|m| &m.group == group)
                .count();
        let rows = &all[start..end];
        let peers: Vec<&Median> = rows.iter().filter(|m| !is_ours(m)).collect();
        for m in rows {
            let ratios = if is_ours(m) {
                peers
                    .iter()
                    .filter(|p| p.nanos > 0.0)
                    .map(|p| format!("{:.2}x {}", m.nanos / p.nanos, p.bench))
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                String::new()
            };
            println!(
                "{:<36} {:<28} {:>11}  {}",
                m.group,
                m.bench,
                human(m.nanos),
                ratios
            );
        }
        start = end;
    }
    Ok(())
}

fn is_ours(m: &Median) -> bool {
    m.bench.starts_with("mpm")
}
