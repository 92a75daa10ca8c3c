//! The `default` profile: the file split into sections of entries, the stages run on each
//! section to a fixpoint ([`stages`]) over a pair cache ([`pairs`]), then rendered back with
//! every other line in its place.

mod merge;
mod pairs;
pub(crate) mod scorer;
mod stages;

use std::collections::HashMap;

pub(crate) use merge::merge_contents;

use crate::document::{Document, Line, LineKind, bullet_content, classify, is_py_space};
use crate::options::{Options, Profile};
use crate::report::{Action, AuditEntry, Report};
use pairs::Pairs;
use scorer::Scorer;
use stages::{consolidate_stage, exact_stage, near_stage, reorder_section, size_policy};

/// An entry of a section: a list item (and the more-indented lines under it).
struct Entry {
    lines: Vec<Line>,
    /// 1-based line number of the first line in the original file.
    line_number: usize,
    /// Original order in the file.
    order: usize,
    has_children: bool,
    alive: bool,
    /// The exact-duplicate key of the content, once computed ([`Entry::set_text`] clears it).
    key: Option<String>,
}

impl Entry {
    /// Replaces the first line's text (a merge or a longer near duplicate).
    fn set_text(&mut self, text: String) {
        self.lines[0].text = text;
        self.key = None;
    }
    fn content(&self) -> &str {
        bullet_content(&self.lines[0].text)
    }
    fn prefix(&self) -> &str {
        let t = &self.lines[0].text;
        let c = self.content();
        // The content is a trimmed tail of the first line: keep what comes before it.
        match t.find(c) {
            Some(i) if !c.is_empty() => &t[..i],
            _ => t.trim_end_matches(is_py_space),
        }
    }
    fn bytes(&self) -> usize {
        self.lines
            .iter()
            .map(|l| l.text.len() + l.ending.as_str().len())
            .sum()
    }
}

enum Slot {
    Line(Line),
    Entry(usize),
}

struct SectionWork {
    name: String,
    heading: Option<Line>,
    slots: Vec<Slot>,
    entries: Vec<Entry>,
    verbatim: bool,
}

/// Runs the `default` profile on text.
pub(crate) fn optimize_default(doc: &Document, opts: &Options) -> (String, Report) {
    let mut report = Report {
        profile: Profile::Default.as_str().to_owned(),
        success: true,
        ..Report::default()
    };
    let original = doc.render();
    let mut sections = split_sections(doc, opts, &mut report);
    let mut order = 0usize;
    for s in &mut sections {
        for e in &mut s.entries {
            e.order = order;
            order += 1;
        }
    }
    let metric = opts.metric.as_ref();
    let mut scorer = Scorer::new(metric, opts.prune);
    let t_min = [opts.near_duplicates, opts.consolidation]
        .into_iter()
        .flatten()
        .fold(f64::INFINITY, f64::min);
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        t => t,
    };
    for s in sections.iter_mut().filter(|s| !s.verbatim) {
        let before_removed = report.audit.len();
        let mut pairs = Pairs::new(s, t_min, threads);
        // Stages to a fixpoint: a merged entry may match another one.
        for round in 0..8 {
            let mut changed = false;
            if opts.exact_duplicates {
                changed |= exact_stage(s, &mut report);
            }
            if round == 0 && t_min.is_finite() {
                pairs.fill(&mut scorer, &alive(s));
            }
            if let Some(t) = opts.near_duplicates {
                changed |= near_stage(s, t, &mut pairs, &mut scorer, &mut report);
            }
            if let Some(t) = opts.consolidation {
                changed |= consolidate_stage(s, t, &mut pairs, &mut scorer, &mut report);
            }
            if !changed {
                break;
            }
        }
        if report.audit[before_removed..]
            .iter()
            .any(|a| a.action != Action::SectionMerged)
        {
            report.sections_optimized += 1;
        }
        if opts.reorder && reorder_section(s, &opts.keywords) {
            report.items_reordered += 1;
        }
    }
    if let Some(limit) = opts.size_limit {
        size_policy(
            &mut sections,
            limit,
            &opts.keywords,
            &original,
            doc,
            &mut report,
        );
    }
    let out = render(doc, &sections);
    report.pairs = scorer.stats;
    report.set_sizes(&original, &out);
    (out, report)
}

fn split_sections(doc: &Document, opts: &Options, report: &mut Report) -> Vec<SectionWork> {
    let mut sections: Vec<SectionWork> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for sec in doc.sections() {
        let verbatim = matches!(sec.name.to_lowercase().as_str(), "header" | "metadata");
        let body = sec.lines.start + 1..sec.lines.end;
        let target = if opts.merge_repeated_sections {
            by_name.get(&sec.name).copied()
        } else {
            None
        };
        match target {
            Some(k) if !verbatim && !sections[k].verbatim => {
                report.sections_merged += 1;
                report.audit.push(AuditEntry {
                    action: Action::SectionMerged,
                    section: sec.name.clone(),
                    line_number: sec.heading + 1,
                    line: doc.lines[sec.heading].text.clone(),
                    matched_line_number: None,
                    matched: sections[k].heading.as_ref().map(|h| h.text.clone()),
                    score: None,
                });
                // Insert the body before the first section's trailing blank lines.
                let s = &mut sections[k];
                let mut tail = Vec::new();
                while matches!(s.slots.last(), Some(Slot::Line(l)) if classify(&l.text) == LineKind::Blank)
                {
                    tail.push(s.slots.pop().expect("checked"));
                }
                push_body(s, doc, body);
                // Keep the last line's ending sane: a merged body may end without a newline.
                tail.reverse();
                s.slots.extend(tail);
            }
            _ => {
                let mut s = SectionWork {
                    name: sec.name.clone(),
                    heading: Some(doc.lines[sec.heading].clone()),
                    slots: Vec::new(),
                    entries: Vec::new(),
                    verbatim,
                };
                push_body(&mut s, doc, body);
                by_name.entry(sec.name.clone()).or_insert(sections.len());
                sections.push(s);
            }
        }
    }
    sections
}

/// Splits lines into entries (a bullet with the more-indented lines under it) and other lines.
fn push_body(s: &mut SectionWork, doc: &Document, body: std::ops::Range<usize>) {
    let mut i = body.start;
    while i < body.end {
        let line = &doc.lines[i];
        match classify(&line.text) {
            LineKind::Bullet { indent } if !s.verbatim => {
                let mut lines = vec![line.clone()];
                let mut j = i + 1;
                while j < body.end {
                    let t = &doc.lines[j].text;
                    let ind = t.chars().take_while(|c| is_py_space(*c)).count();
                    let blank = classify(t) == LineKind::Blank;
                    if blank || ind <= indent {
                        break;
                    }
                    lines.push(doc.lines[j].clone());
                    j += 1;
                }
                let has_children = lines.len() > 1;
                s.entries.push(Entry {
                    lines,
                    line_number: i + 1,
                    order: 0,
                    has_children,
                    alive: true,
                    key: None,
                });
                s.slots.push(Slot::Entry(s.entries.len() - 1));
                i = j;
            }
            _ => {
                s.slots.push(Slot::Line(line.clone()));
                i += 1;
            }
        }
    }
}

/// Entries that take part in the duplicate stages: alive, and without nested lines (an item
/// with nested lines is kept as it is, so that no nested line is ever lost or moved).
fn alive(s: &SectionWork) -> Vec<usize> {
    (0..s.entries.len())
        .filter(|&k| s.entries[k].alive && !s.entries[k].has_children)
        .collect()
}

fn audit(s: &SectionWork, action: Action, k: usize, m: usize, score: f64) -> AuditEntry {
    AuditEntry {
        action,
        section: s.name.clone(),
        line_number: s.entries[k].line_number,
        line: s.entries[k].lines[0].text.clone(),
        matched_line_number: Some(s.entries[m].line_number),
        matched: Some(s.entries[m].lines[0].text.clone()),
        score: Some(score),
    }
}

fn render(doc: &Document, sections: &[SectionWork]) -> String {
    let mut lines: Vec<&Line> = doc.lines[doc.header()].iter().collect();
    for s in sections {
        if let Some(h) = &s.heading {
            lines.push(h);
        }
        for slot in &s.slots {
            match slot {
                Slot::Line(l) => lines.push(l),
                Slot::Entry(k) if s.entries[*k].alive => lines.extend(s.entries[*k].lines.iter()),
                Slot::Entry(_) => {}
            }
        }
    }
    let mut out = String::with_capacity(doc.lines.iter().map(|l| l.text.len() + 2).sum());
    if doc.bom {
        out.push('\u{feff}');
    }
    let ending = doc.dominant_ending();
    let n = lines.len();
    for (idx, l) in lines.into_iter().enumerate() {
        out.push_str(&l.text);
        // A line that lost its place at the end of the file gets a newline, and the new last
        // line keeps the file's final-newline choice.
        let last = idx + 1 == n;
        let e = if last {
            doc.lines.last().map_or(l.ending, |x| x.ending)
        } else if l.ending == crate::document::LineEnding::None {
            ending
        } else {
            l.ending
        };
        out.push_str(e.as_str());
    }
    out
}
