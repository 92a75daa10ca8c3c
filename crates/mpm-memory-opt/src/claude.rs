//! The `claude-mpm` profile: claude-mpm v4.0.29's `MemoryOptimizer.optimize_agent_memory`,
//! reproduced step by step (its defects included) so that the output is byte for byte the same
//! apart from the timestamp.

use std::collections::HashMap;

use regex::{NoExpand, Regex};

use crate::document::{is_py_space, section_name};
use crate::optimize::merge_contents;
use crate::optimize::scorer::{Prepared, Scorer};
use crate::options::{Keywords, Options, Profile};
use crate::report::{Action, AuditEntry, Report, Warning};
use crate::similarity::Difflib;

/// A line with its 1-based line number in the original file (0 for a line the optimizer made).
type Numbered = (usize, String);

/// The fixed section order of `_rebuild_memory_content`.
const SECTION_ORDER: [&str; 10] = [
    "Project Architecture",
    "Coding Patterns Learned",
    "Implementation Guidelines",
    "Domain-Specific Knowledge",
    "Effective Strategies",
    "Common Mistakes to Avoid",
    "Integration Points",
    "Performance Considerations",
    "Current Technical Context",
    "Recent Learnings",
];

fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Python's `str.split()` with no argument.
fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|w| !w.is_empty())
}

/// `re.sub(r"\s+", " ", s).strip()`.
fn collapse_ws(s: &str) -> String {
    py_split(s).collect::<Vec<_>>().join(" ")
}

/// Runs the profile on the text as Python would read it (`read_text`: universal newlines).
pub(crate) fn optimize_claude(text: &str, opts: &Options, timestamp: &str) -> (String, Report) {
    let mut report = Report {
        profile: Profile::ClaudeMpm.as_str().to_owned(),
        success: true,
        ..Report::default()
    };
    let content = text.replace("\r\n", "\n").replace('\r', "\n");

    // _parse_memory_sections: a dict, so a repeated name replaces the earlier section's lines
    // (keeping its position) and an empty name is never saved.
    let mut names: Vec<String> = Vec::new();
    let mut sections: HashMap<String, Vec<Numbered>> = HashMap::new();
    let mut current = "header".to_owned();
    let mut items: Vec<Numbered> = Vec::new();
    let mut save = |name: &str, items: Vec<Numbered>, report: &mut Report| {
        let dropped: Option<(Vec<Numbered>, &str)> = if name.is_empty() {
            Some((items, "its section name is empty (`## (...)` or `## `)"))
        } else {
            match sections.insert(name.to_owned(), items) {
                Some(old) => Some((old, "a later section has the same name")),
                None => {
                    names.push(name.to_owned());
                    None
                }
            }
        };
        if let Some((lines, why)) = dropped {
            for (n, line) in lines {
                report.warnings.push(Warning {
                    kind: "dropped_line".to_owned(),
                    message: format!("line {n} is dropped by the claude-mpm profile: {why}"),
                    line_number: Some(n),
                    line: Some(line),
                });
            }
        }
    };
    for (idx, line) in content.split('\n').enumerate() {
        if line.starts_with("## ") {
            save(&current, std::mem::take(&mut items), &mut report);
            current = section_name(line);
            items = vec![(idx + 1, line.to_owned())];
        } else {
            items.push((idx + 1, line.to_owned()));
        }
    }
    save(&current, items, &mut report);

    let mut scorer = Scorer::new(&Difflib, opts.prune);
    let mut optimized: HashMap<String, Vec<Numbered>> = HashMap::new();
    for name in &names {
        let items = sections.remove(name).unwrap_or_default();
        let lower = name.to_lowercase();
        if lower == "header" || lower == "metadata" {
            optimized.insert(name.clone(), items);
            continue;
        }
        let out = optimize_section(items, name, &opts.keywords, &mut scorer, &mut report);
        optimized.insert(name.clone(), out);
    }

    // _rebuild_memory_content.
    let mut lines: Vec<String> = Vec::new();
    let push_section = |lines: &mut Vec<String>, sec: Vec<Numbered>| {
        if let Some(last) = lines.last()
            && !py_strip(last).is_empty()
        {
            lines.push(String::new());
        }
        lines.extend(sec.into_iter().map(|(_, l)| l));
    };
    if let Some(h) = optimized.remove("header") {
        lines.extend(h.into_iter().map(|(_, l)| l));
    }
    for name in SECTION_ORDER {
        if let Some(sec) = optimized.remove(name) {
            push_section(&mut lines, sec);
        }
    }
    for name in &names {
        if let Some(sec) = optimized.remove(name) {
            push_section(&mut lines, sec);
        }
    }
    let joined = lines.join("\n");
    let re = Regex::new(r"<!-- Last Updated: .+ \| Auto-updated by: .+ -->")
        .expect("the pattern is valid");
    let replacement = format!("<!-- Last Updated: {timestamp} | Auto-updated by: optimizer -->");
    let out = re.replace_all(&joined, NoExpand(&replacement)).into_owned();
    report.pairs = scorer.stats;
    report.warnings.sort_by_key(|w| w.line_number);
    report.set_sizes(&content, &out);
    // Sizes are code points of the text Python read (universal newlines), as Python reports them.
    report.original_bytes = text.len();
    (out, report)
}

fn optimize_section(
    items: Vec<Numbered>,
    section: &str,
    kw: &Keywords,
    scorer: &mut Scorer<'_>,
    report: &mut Report,
) -> Vec<Numbered> {
    let mut header = Vec::new();
    let mut bullets = Vec::new();
    let mut other = Vec::new();
    for (n, line) in &items {
        let s = py_strip(line);
        if s.starts_with("- ") {
            bullets.push((*n, line.clone()));
        } else if s.starts_with("## ") || s.starts_with("<!--") {
            header.push((*n, line.clone()));
        } else {
            other.push((*n, line.clone()));
        }
    }
    if bullets.is_empty() {
        return items;
    }
    let audit = |action, line: &Numbered, matched: &Numbered, score| AuditEntry {
        action,
        section: section.to_owned(),
        line_number: line.0,
        line: line.1.clone(),
        matched_line_number: Some(matched.0),
        matched: Some(matched.1.clone()),
        score: Some(score),
    };

    // _remove_duplicates: every "- " removed (not only the marker), whitespace collapsed.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut unique: Vec<Numbered> = Vec::new();
    let mut dups = 0;
    for point in bullets {
        let key = collapse_ws(&py_strip(&point.1).to_lowercase().replace("- ", ""));
        match seen.get(&key) {
            Some(&k) => {
                report
                    .audit
                    .push(audit(Action::ExactDuplicate, &point, &unique[k], 1.0));
                dups += 1;
            }
            None => {
                seen.insert(key, unique.len());
                unique.push(point);
            }
        }
    }

    // _consolidate_similar_items: greedy groups at difflib ratio >= 0.70.
    let mut consolidated: Vec<Numbered> = Vec::new();
    let mut merged_count = 0;
    if unique.len() < 2 {
        consolidated = unique;
    } else {
        let contents: Vec<String> = unique
            .iter()
            .map(|p| py_strip(&p.1).replace("- ", ""))
            .collect();
        let mut prepared: Vec<Prepared> = contents
            .iter()
            .map(|c| Prepared::new(c.to_lowercase()))
            .collect();
        scorer.invalidate();
        let mut used = vec![false; unique.len()];
        for i in 0..unique.len() {
            if used[i] {
                continue;
            }
            used[i] = true;
            let mut group = vec![i];
            for j in i + 1..unique.len() {
                if used[j] {
                    continue;
                }
                if let Some(r) = scorer.at_least(&mut prepared, i, j, 0.70) {
                    report
                        .audit
                        .push(audit(Action::Consolidated, &unique[j], &unique[i], r));
                    group.push(j);
                    used[j] = true;
                }
            }
            if group.len() > 1 {
                let refs: Vec<&str> = group.iter().map(|g| contents[*g].as_str()).collect();
                consolidated.push((unique[i].0, format!("- {}", merge_contents(&refs))));
                merged_count += group.len() - 1;
            } else {
                consolidated.push(unique[i].clone());
            }
        }
    }

    // _reorder_by_priority: score descending, then the lowercased line.
    let mut keyed: Vec<(u32, String, Numbered)> = consolidated
        .iter()
        .map(|p| {
            let lower = p.1.to_lowercase();
            (kw.score(&lower), lower, p.clone())
        })
        .collect();
    keyed.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let reordered: Vec<Numbered> = keyed.into_iter().map(|(_, _, p)| p).collect();
    if reordered
        .iter()
        .map(|p| &p.1)
        .ne(consolidated.iter().map(|p| &p.1))
    {
        report.items_reordered += 1;
    }
    report.duplicates_removed += dups;
    report.items_consolidated += merged_count;
    if dups > 0 || merged_count > 0 {
        report.sections_optimized += 1;
    }
    let mut out = header;
    out.extend(other);
    out.extend(reordered);
    out
}
