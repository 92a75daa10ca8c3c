//! The merge rules of consolidation and the exact-duplicate key.

use crate::document::is_py_space;

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
