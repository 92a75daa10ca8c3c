//! `cargo xtask report`: the page again from a summary, the page checked in a real browser, the
//! run's summary kept for the docs, and the docs generated from it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::manifest::report_dir;
use crate::summary::{Summary, read_history, write_atomic};

pub(crate) const USAGE: &str =
    "cargo xtask report [--keep] [--write-docs] [--check] [--summary PATH] [--out DIR]";

pub(crate) fn run(args: &[String]) -> Result<()> {
    let (mut keep, mut write_docs, mut check) = (false, false, false);
    let mut summary = crate::bench::summary_path();
    let mut out = report_dir();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--keep" => keep = true,
            "--write-docs" => write_docs = true,
            "--check" => check = true,
            "--summary" => summary = PathBuf::from(it.next().context("--summary takes a path")?),
            "--out" => out = PathBuf::from(it.next().context("--out takes a folder")?),
            other => bail!("unknown argument {other:?}\nusage: {USAGE}"),
        }
    }
    if keep {
        crate::docs::keep(&summary)?;
    }
    if write_docs {
        crate::docs::write()?;
    }
    if (keep || write_docs) && !check {
        return Ok(());
    }
    let s = Summary::read(&summary)?;
    let page = out.join("index.html");
    let history = read_history(&report_dir().join("history.jsonl"));
    write_atomic(&page, crate::html::page(&s, &history).as_bytes())?;
    println!("page: {}", page.display());
    if check {
        check_in_browser(&s, &page, &out.join("screenshot.png"))?;
    }
    Ok(())
}

/// Whether a missing program must fail rather than be skipped.
fn required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("MPM_REQUIRE_SERVICES").is_some()
}

/// Renders the page in headless chromium: one chart per group and a verdict row per
/// comparison must be in the DOM it builds; saves a screenshot.
pub(crate) fn check_in_browser(s: &Summary, page: &Path, screenshot: &Path) -> Result<()> {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(chromium) = chromium else {
        if required() {
            bail!(
                "chromium is not installed (on Debian: apt-get install chromium), and CI or MPM_REQUIRE_SERVICES is set"
            );
        }
        println!(
            "browser check skipped: chromium is not installed (on Debian: apt-get install chromium)"
        );
        return Ok(());
    };
    let page = page
        .canonicalize()
        .with_context(|| format!("{} does not exist", page.display()))?;
    let url = format!("file://{}", page.display());
    let base = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
    ];
    let dom = Command::new(chromium)
        .args(base)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .context("could not start chromium")?;
    if !dom.status.success() {
        bail!(
            "chromium --dump-dom failed: {}",
            String::from_utf8_lossy(&dom.stderr)
        );
    }
    let dom = String::from_utf8_lossy(&dom.stdout);
    let problems = dom_problems(&dom, s);
    if !problems.is_empty() {
        bail!("the page as chromium renders it: {}", problems.join("; "));
    }
    if let Some(dir) = screenshot.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let height =
        900 + 220 * s.groups.len().div_ceil(2) * 2 + 30 * (s.comparisons.len() + s.budgets.len());
    let shot = Command::new(chromium)
        .args(base)
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("--window-size=1100,{height}"))
        .arg(&url)
        .output()
        .context("could not start chromium")?;
    if !shot.status.success() || !screenshot.is_file() {
        bail!(
            "chromium --screenshot failed: {}",
            String::from_utf8_lossy(&shot.stderr)
        );
    }
    println!(
        "browser check: chromium renders {} charts (one per group) and {} verdict rows; screenshot {}",
        s.groups.len(),
        s.comparisons.len(),
        screenshot.display()
    );
    Ok(())
}

/// What is wrong with the rendered DOM: a chart per group, a non-empty verdict table.
fn dom_problems(dom: &str, s: &Summary) -> Vec<String> {
    let mut problems = Vec::new();
    let charts = dom.matches("<svg class=\"chart\"").count();
    if charts != s.groups.len() || charts == 0 {
        problems.push(format!("{charts} charts for {} groups", s.groups.len()));
    }
    for g in &s.groups {
        if !dom.contains(&format!("data-group=\"{}\"", g.name)) {
            problems.push(format!("no chart for group {}", g.name));
        }
    }
    let rows = dom.matches("<tr class=\"verdict ").count();
    if rows == 0 || rows != s.comparisons.len() {
        problems.push(format!(
            "{rows} verdict rows for {} comparisons",
            s.comparisons.len()
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_of_the_committed_summary_has_a_chart_per_group_and_the_verdicts() {
        let s = Summary::read(&crate::docs::committed_summary()).unwrap();
        let page = crate::html::page(&s, &[]);
        assert_eq!(dom_problems(&page, &s), Vec::<String>::new());
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "the page must need no network"
        );
        let mut fewer = s.clone();
        fewer.groups.pop();
        assert!(!dom_problems(&crate::html::page(&fewer, &[]), &s).is_empty());
    }
}
