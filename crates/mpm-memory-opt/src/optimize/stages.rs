//! The `default` profile's stages over one section: exact duplicates, near duplicates,
//! consolidation, priority order, and the file's size policy.

use std::collections::HashMap;

use super::merge::{merge_readable, normalize_key};
use super::pairs::Pairs;
use super::scorer::Scorer;
use super::{SectionWork, Slot, alive, audit, render};
use crate::document::Document;
use crate::options::Keywords;
use crate::report::{Action, AuditEntry, Report, Warning};

pub(super) fn exact_stage(s: &mut SectionWork, report: &mut Report) -> bool {
    let ks = alive(s);
    for &k in &ks {
        let e = &mut s.entries[k];
        if e.key.is_none() {
            e.key = Some(normalize_key(e.content()));
        }
    }
    // Later entries equal to an earlier one, with that one.
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(ks.len());
    let mut duplicates = Vec::new();
    for &k in &ks {
        let key = s.entries[k].key.as_deref().unwrap_or_default();
        match seen.get(key) {
            Some(&m) => duplicates.push((k, m)),
            None => {
                seen.insert(key, k);
            }
        }
    }
    for &(k, m) in &duplicates {
        report
            .audit
            .push(audit(s, Action::ExactDuplicate, k, m, 1.0));
        report.duplicates_removed += 1;
        s.entries[k].alive = false;
    }
    !duplicates.is_empty()
}

pub(super) fn near_stage(
    s: &mut SectionWork,
    t: f64,
    pairs: &mut Pairs,
    scorer: &mut Scorer<'_>,
    report: &mut Report,
) -> bool {
    let ks = alive(s);
    // Entries processed without a match: the earlier lines a later one is compared with.
    let mut kept = vec![false; s.entries.len()];
    let mut changed = false;
    for &j in &ks {
        // The first kept entry (in file order) that `j` reaches `t` with.
        let hit = pairs
            .partners(j)
            .iter()
            .take_while(|&&(i, _)| i < j)
            .find(|&&(i, r)| kept[i] && r >= t)
            .copied();
        match hit {
            Some((i, r)) => {
                // The later line goes; the longer (more detailed) text stays, at the earlier place.
                report.audit.push(audit(s, Action::NearDuplicate, j, i, r));
                report.duplicates_removed += 1;
                report.near_duplicates_removed += 1;
                s.entries[j].alive = false;
                if s.entries[j].content().chars().count() > s.entries[i].content().chars().count() {
                    let text = format!("{}{}", s.entries[i].prefix(), s.entries[j].content());
                    s.entries[i].set_text(text);
                    pairs.changed(scorer, i, s.entries[i].content(), || alive(s), Some(j));
                }
                changed = true;
            }
            None => kept[j] = true,
        }
    }
    changed
}

pub(super) fn consolidate_stage(
    s: &mut SectionWork,
    t: f64,
    pairs: &mut Pairs,
    scorer: &mut Scorer<'_>,
    report: &mut Report,
) -> bool {
    let ks = alive(s);
    let mut used = vec![false; s.entries.len()];
    let mut changed = false;
    for &i in &ks {
        if used[i] {
            continue;
        }
        used[i] = true;
        let mut group = vec![(i, 1.0)];
        for &(j, r) in pairs.partners(i) {
            if j > i && !used[j] && s.entries[j].alive && r >= t {
                group.push((j, r));
                used[j] = true;
            }
        }
        if group.len() < 2 {
            continue;
        }
        let contents: Vec<String> = group
            .iter()
            .map(|(g, _)| s.entries[*g].content().to_owned())
            .collect();
        let refs: Vec<&str> = contents.iter().map(String::as_str).collect();
        let merged = merge_readable(&refs);
        for &(g, r) in &group[1..] {
            report.audit.push(audit(s, Action::Consolidated, g, i, r));
            report.items_consolidated += 1;
            s.entries[g].alive = false;
        }
        // With no words added, the merged text is one of the group's.
        let twin = group
            .iter()
            .map(|&(g, _)| g)
            .find(|&g| s.entries[g].content() == merged);
        let text = format!("{}{}", s.entries[i].prefix(), merged);
        s.entries[i].set_text(text);
        pairs.changed(scorer, i, s.entries[i].content(), || alive(s), twin);
        changed = true;
    }
    changed
}

/// Stable sort of each run of consecutive entries by score; `true` if the order changed.
pub(super) fn reorder_section(s: &mut SectionWork, kw: &Keywords) -> bool {
    let mut changed = false;
    let mut run: Vec<usize> = Vec::new(); // slot indices of a run
    let mut runs: Vec<Vec<usize>> = Vec::new();
    for (si, slot) in s.slots.iter().enumerate() {
        match slot {
            Slot::Entry(k) if s.entries[*k].alive => run.push(si),
            Slot::Entry(_) => {}
            Slot::Line(_) => {
                if !run.is_empty() {
                    runs.push(std::mem::take(&mut run));
                }
            }
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    for run in runs {
        let ks: Vec<usize> = run
            .iter()
            .map(|&si| match s.slots[si] {
                Slot::Entry(k) => k,
                Slot::Line(_) => unreachable!("runs hold entries only"),
            })
            .collect();
        let mut sorted = ks.clone();
        sorted.sort_by_cached_key(|&k| {
            std::cmp::Reverse(kw.score(&s.entries[k].lines[0].text.to_lowercase()))
        });
        if sorted != ks {
            changed = true;
            for (pos, &si) in run.iter().enumerate() {
                s.slots[si] = Slot::Entry(sorted[pos]);
            }
        }
    }
    changed
}

pub(super) fn size_policy(
    sections: &mut [SectionWork],
    limit: usize,
    kw: &Keywords,
    original: &str,
    doc: &Document,
    report: &mut Report,
) {
    let mut size = render(doc, sections).len();
    if size <= limit {
        return;
    }
    let mut candidates: Vec<(u32, usize, usize, usize)> = Vec::new(); // score, order, section, entry
    for (si, s) in sections.iter().enumerate() {
        // `Recent Learnings` (sectioned layout) or `Learnings` (flat layout).
        if s.verbatim || !(s.name == "Recent Learnings" || s.name == "Learnings") {
            continue;
        }
        for (k, e) in s.entries.iter().enumerate() {
            if e.alive && !e.has_children {
                candidates.push((kw.score(&e.lines[0].text.to_lowercase()), e.order, si, k));
            }
        }
    }
    candidates.sort();
    for (score, _, si, k) in candidates {
        if size <= limit {
            break;
        }
        let s = &mut sections[si];
        s.entries[k].alive = false;
        size -= s.entries[k].bytes();
        report.size_limit_removed += 1;
        report.audit.push(AuditEntry {
            action: Action::SizeLimit,
            section: s.name.clone(),
            line_number: s.entries[k].line_number,
            line: s.entries[k].lines[0].text.clone(),
            matched_line_number: None,
            matched: None,
            score: Some(f64::from(score)),
        });
    }
    let size = render(doc, sections).len();
    if size > limit {
        report.warnings.push(Warning {
            kind: "over_limit".to_owned(),
            message: format!(
                "still {size} bytes after the size policy, over the {limit}-byte limit (was {} bytes); only Recent Learnings entries are removed for size",
                original.len()
            ),
            line_number: None,
            line: None,
        });
    }
}
