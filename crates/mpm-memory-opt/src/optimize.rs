//! The optimizer: options, profiles and the `default` profile's stages.

use std::collections::HashMap;
use std::sync::Arc;

use crate::document::{Document, Line, LineKind, bullet_content, classify, is_py_space};
use crate::report::{Action, AuditEntry, Report, Warning};
use crate::similarity::{Brief, Indel, PairStats, Prepared, Scorer, Similarity};

/// Which optimizer to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Ours: claude-mpm's stages with its defects fixed (nothing is dropped, layout is kept,
    /// ties keep their order, repeated sections are merged, a size policy).
    #[default]
    Default,
    /// claude-mpm v4.0.29's `MemoryOptimizer`, byte for byte apart from the timestamp, its
    /// defects included (each line it drops is reported as a warning).
    ClaudeMpm,
}

impl Profile {
    /// `"default"` or `"claude-mpm"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::ClaudeMpm => "claude-mpm",
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Profile, String> {
        match s {
            "default" => Ok(Profile::Default),
            "claude-mpm" | "claude_mpm" => Ok(Profile::ClaudeMpm),
            _ => Err(format!(
                "unknown profile `{s}` (expected `default` or `claude-mpm`)"
            )),
        }
    }
}

/// Priority keywords: each one found (as a substring of the lowercased entry) adds its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keywords {
    /// Weight 3. claude-mpm: critical, important, essential, required, must, always, never.
    pub high: Vec<String>,
    /// Weight 2. claude-mpm: should, recommended, prefer, avoid, consider.
    pub medium: Vec<String>,
    /// Weight 1. claude-mpm: note, tip, hint, example, reference.
    pub low: Vec<String>,
}

impl Default for Keywords {
    fn default() -> Keywords {
        let v = |s: &[&str]| s.iter().map(|w| (*w).to_owned()).collect();
        Keywords {
            high: v(&[
                "critical",
                "important",
                "essential",
                "required",
                "must",
                "always",
                "never",
            ]),
            medium: v(&["should", "recommended", "prefer", "avoid", "consider"]),
            low: v(&["note", "tip", "hint", "example", "reference"]),
        }
    }
}

impl Keywords {
    /// claude-mpm's score of a (lowercased) line: keyword weights, plus 1 over 100 characters.
    pub fn score(&self, lowercased: &str) -> u32 {
        let count = |ws: &[String]| {
            ws.iter()
                .filter(|w| lowercased.contains(w.as_str()))
                .count()
        };
        let mut score = 3 * count(&self.high) + 2 * count(&self.medium) + count(&self.low);
        if lowercased.chars().count() > 100 {
            score += 1;
        }
        score as u32
    }
}

/// How symbolic links are treated when a file is optimized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SymlinkPolicy {
    /// Refuse a path that is a symbolic link (the default: replacing the link's target may
    /// surprise, and replacing the link itself would cut it).
    #[default]
    Refuse,
    /// Follow the link and replace its target atomically; the link stays a link.
    Follow,
}

/// What the optimizer does. `Options::default()` is the `default` profile with the issue's
/// thresholds: exact duplicates, near duplicates at 0.85, consolidation at 0.70, priority order,
/// repeated sections merged, an 80 KB limit.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which optimizer.
    pub profile: Profile,
    /// Remove entries equal after normalising case and whitespace.
    pub exact_duplicates: bool,
    /// Remove entries at least this similar to an earlier one (`None`: off).
    pub near_duplicates: Option<f64>,
    /// Merge entries at least this similar to an earlier one (`None`: off).
    pub consolidation: Option<f64>,
    /// Order entries by priority score (stable: ties keep their order).
    pub reorder: bool,
    /// Merge a repeated section into the first section of its name.
    pub merge_repeated_sections: bool,
    /// Priority keywords.
    pub keywords: Keywords,
    /// The size limit in bytes (`None`: no size policy). Default 80 KB (81,920 bytes). Over it,
    /// items of `Recent Learnings` (or `Learnings`, the flat layout's section) are removed,
    /// lowest priority and oldest first.
    pub size_limit: Option<usize>,
    /// [`crate::MemoryStore::auto_optimize_if_needed`] runs when a file passes this share of
    /// its limit (0.8).
    pub trigger_ratio: f64,
    /// Files larger than this are refused (64 MiB).
    pub max_file_bytes: u64,
    /// The metric of the `default` profile (the `claude-mpm` profile always uses difflib).
    pub metric: Arc<dyn Similarity>,
    /// Prune pairs with upper bounds (never changes the result; off only for comparison).
    pub prune: bool,
    /// Symbolic links.
    pub symlinks: SymlinkPolicy,
    /// Threads for a section's pair work (`default` profile): every section's candidate pairs
    /// are computed up front, and a section with at least 50,000 of them is split over this
    /// many threads; `0` (the default) means the machine's available parallelism, `1` one
    /// thread. The output does not depend on it.
    pub threads: usize,
    /// The timestamp written by the `claude-mpm` profile (`YYYY-mm-dd HH:MM:SS`); `None`: now, UTC.
    pub timestamp: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            profile: Profile::Default,
            exact_duplicates: true,
            near_duplicates: Some(0.85),
            consolidation: Some(0.70),
            reorder: true,
            merge_repeated_sections: true,
            keywords: Keywords::default(),
            size_limit: Some(80 * 1024),
            trigger_ratio: 0.8,
            max_file_bytes: 64 * 1024 * 1024,
            metric: Arc::new(Indel),
            prune: true,
            symlinks: SymlinkPolicy::Refuse,
            threads: 0,
            timestamp: None,
        }
    }
}

impl Options {
    /// The `claude-mpm` profile's options.
    pub fn claude_mpm() -> Options {
        Options {
            profile: Profile::ClaudeMpm,
            ..Options::default()
        }
    }
}

/// An optimized text and its report.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The new file contents.
    pub output: String,
    /// What changed.
    pub report: Report,
}

/// Exact-duplicate key: lowercased, whitespace runs collapsed, trimmed.
pub(crate) fn normalize_key(content: &str) -> String {
    let lower = content.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    for w in lower.split(is_py_space).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// claude-mpm's merge rule over item contents: the longest (first on ties), plus the 1 to 4
/// lowercased words the others bring, sorted, in parentheses.
pub(crate) fn merge_contents(contents: &[&str]) -> String {
    let mut base = contents[0];
    for c in &contents[1..] {
        if c.chars().count() > base.chars().count() {
            base = c;
        }
    }
    let base_lower = base.to_lowercase();
    let base_words: std::collections::BTreeSet<&str> = base_lower
        .split(is_py_space)
        .filter(|w| !w.is_empty())
        .collect();
    let lowered: Vec<String> = contents.iter().map(|c| c.to_lowercase()).collect();
    let mut extra: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for l in &lowered {
        for w in l.split(is_py_space).filter(|w| !w.is_empty()) {
            if !base_words.contains(w) {
                extra.insert(w);
            }
        }
    }
    if !extra.is_empty() && extra.len() < 5 {
        let words: Vec<&str> = extra.into_iter().collect();
        format!("{base} ({})", words.join(", "))
    } else {
        base.to_owned()
    }
}

/// Words too common to say anything when appended to a merged entry.
const STOP_WORDS: [&str; 32] = [
    "a", "after", "all", "an", "and", "any", "are", "as", "at", "be", "before", "by", "for",
    "from", "in", "into", "is", "it", "its", "no", "not", "of", "on", "or", "so", "that", "the",
    "then", "this", "to", "too", "with",
];

/// The words of a text for the `default` profile's merge rule: runs of letters, digits and `_`,
/// lowercased (so `std::sync::Mutex` gives `std`, `sync`, `mutex` and `.await` gives `await`).
fn plain_words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The `default` profile's merge rule: claude-mpm's (the longest item, first on ties, plus the
/// 1 to 4 words the others bring, sorted, in parentheses), where a word is a run of letters and
/// digits (punctuation never makes a word of its own) and common words such as `with` or `the`
/// are not brought.
pub(crate) fn merge_readable(contents: &[&str]) -> String {
    let mut base = contents[0];
    for c in &contents[1..] {
        if c.chars().count() > base.chars().count() {
            base = c;
        }
    }
    let base_words: std::collections::BTreeSet<String> = plain_words(base).collect();
    let extra: std::collections::BTreeSet<String> = contents
        .iter()
        .flat_map(|c| plain_words(c))
        .filter(|w| !base_words.contains(w) && !STOP_WORDS.contains(&w.as_str()))
        .collect();
    if !extra.is_empty() && extra.len() < 5 {
        let words: Vec<&str> = extra.iter().map(String::as_str).collect();
        format!("{base} ({})", words.join(", "))
    } else {
        base.to_owned()
    }
}

/// An entry of a section: a list item (and the more-indented lines under it).
struct Entry {
    lines: Vec<Line>,
    /// 1-based line number of the first line in the original file.
    line_number: usize,
    /// Original order in the file.
    order: usize,
    has_children: bool,
    alive: bool,
}

impl Entry {
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

/// Pairs `(earlier, later)` at or above a threshold, with their ratios.
type Hits = Vec<((usize, usize), f64)>;

/// A section with fewer candidate pairs than this is computed on the calling thread.
const PARALLEL_MIN_PAIRS: usize = 50_000;

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

fn exact_stage(s: &mut SectionWork, report: &mut Report) -> bool {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut changed = false;
    for k in alive(s) {
        let key = normalize_key(s.entries[k].content());
        match seen.get(&key) {
            Some(&m) => {
                report
                    .audit
                    .push(audit(s, Action::ExactDuplicate, k, m, 1.0));
                report.duplicates_removed += 1;
                s.entries[k].alive = false;
                changed = true;
            }
            None => {
                seen.insert(key, k);
            }
        }
    }
    changed
}

/// The pairs of one section's entries that reach the lowest stage threshold, with their ratios.
///
/// Every pair of entries that take part (see [`alive`]) is computed once up front; when an
/// entry's text changes, its pairs with the entries still taking part are computed again at
/// once. The stages then only read the partners lists. A pair is always computed as (earlier,
/// later), so an asymmetric metric sees it the way claude-mpm's loop does. Each answer depends
/// only on the two texts, so the result is the one of asking every pair when it is needed.
struct Pairs {
    items: Vec<Prepared>,
    /// Per entry, the entries it reaches `t_min` with, by entry index (ascending), with the ratio.
    partners: Vec<Vec<(usize, f64)>>,
    t_min: f64,
    threads: usize,
}

impl Pairs {
    fn new(s: &SectionWork, t_min: f64, threads: usize) -> Pairs {
        Pairs {
            items: s
                .entries
                .iter()
                .map(|e| Prepared::new(e.content().to_lowercase()))
                .collect(),
            partners: vec![Vec::new(); s.entries.len()],
            t_min,
            threads,
        }
    }

    /// The partners of entry `k` (ascending), with ratios at least `t_min`.
    fn partners(&self, k: usize) -> &[(usize, f64)] {
        &self.partners[k]
    }

    /// Computes every pair `(ks[x], ks[y])`, `x < y`; split over threads when there are at least
    /// [`PARALLEL_MIN_PAIRS`] of them.
    fn fill(&mut self, scorer: &mut Scorer<'_>, ks: &[usize]) {
        // Rows by length: each row's entry is compared with the longer ones, so the row tables
        // (the patterns) are the shorter texts.
        let mut ks = ks.to_vec();
        ks.sort_by_key(|&k| (self.items[k].chars.len(), k));
        let ks = &ks[..];
        let n = ks.len();
        let pairs = n * n.saturating_sub(1) / 2;
        let threads = self.threads.min(n / 2).max(1);
        scorer.prepare_shared(&mut self.items);
        let items = &self.items;
        // What the bounds read, in row order: a row reads its texts one after another.
        let briefs: Vec<Brief<'_>> = ks.iter().map(|&k| items[k].brief()).collect();
        let briefs = &briefs[..];
        let t_min = self.t_min;
        let results: Vec<(Hits, PairStats)> = if threads < 2 || pairs < PARALLEL_MIN_PAIRS {
            let mut hits = Vec::new();
            scorer.rows(items, (ks, briefs), (0, n), t_min, &mut hits);
            vec![(hits, PairStats::default())]
        } else {
            let next = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|scope| {
                let workers: Vec<_> = (0..threads)
                    .map(|_| {
                        let mut sc = scorer.fork();
                        let next = &next;
                        scope.spawn(move || {
                            let mut hits = Vec::new();
                            loop {
                                // Rows in small chunks, taken in turn: the triangle's rows shrink.
                                let x0 = next.fetch_add(8, std::sync::atomic::Ordering::Relaxed);
                                if x0 >= n {
                                    break;
                                }
                                sc.rows(
                                    items,
                                    (ks, briefs),
                                    (x0, (x0 + 8).min(n)),
                                    t_min,
                                    &mut hits,
                                );
                            }
                            (hits, sc.stats)
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().expect("a pair worker panicked"))
                    .collect()
            })
        };
        for (hits, stats) in results {
            for ((a, b), r) in hits {
                self.partners[a].push((b, r));
                self.partners[b].push((a, r));
            }
            scorer.stats += stats;
        }
        for p in &mut self.partners {
            p.sort_unstable_by_key(|&(o, _)| o);
        }
    }

    /// Entry `k`'s text is now `content`: its pairs with the entries of `ks` are computed again,
    /// or, with a symmetric metric, copied from `twin` when that entry (taking part until now)
    /// has the same text.
    fn changed(
        &mut self,
        scorer: &mut Scorer<'_>,
        k: usize,
        content: &str,
        ks: &[usize],
        twin: Option<usize>,
    ) {
        let lower = content.to_lowercase();
        if lower == self.items[k].text {
            return;
        }
        for (o, _) in std::mem::take(&mut self.partners[k]) {
            self.partners[o].retain(|&(p, _)| p != k);
        }
        let twin = twin.filter(|&t| t != k && scorer.symmetric() && self.items[t].text == lower);
        self.items[k] = Prepared::new(lower);
        let hits: Vec<(usize, f64)> = match twin {
            Some(t) => self.partners[t]
                .iter()
                .copied()
                .filter(|&(o, _)| o != k)
                .collect(),
            None => {
                scorer.prepare_one(&mut self.items[k]);
                scorer.invalidate();
                let mut hits = Vec::new();
                scorer.row(&self.items, k, ks, self.t_min, &mut hits);
                hits.into_iter()
                    .map(|((a, b), r)| (if a == k { b } else { a }, r))
                    .collect()
            }
        };
        for (o, r) in hits {
            self.partners[k].push((o, r));
            let list = &mut self.partners[o];
            let at = list.partition_point(|&(p, _)| p < k);
            list.insert(at, (k, r));
        }
        self.partners[k].sort_unstable_by_key(|&(o, _)| o);
    }
}

fn near_stage(
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
                    s.entries[i].lines[0].text = text;
                    pairs.changed(scorer, i, s.entries[i].content(), &alive(s), Some(j));
                }
                changed = true;
            }
            None => kept[j] = true,
        }
    }
    changed
}

fn consolidate_stage(
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
        s.entries[i].lines[0].text = text;
        pairs.changed(scorer, i, s.entries[i].content(), &alive(s), twin);
        changed = true;
    }
    changed
}

/// Stable sort of each run of consecutive entries by score; `true` if the order changed.
fn reorder_section(s: &mut SectionWork, kw: &Keywords) -> bool {
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

fn size_policy(
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
