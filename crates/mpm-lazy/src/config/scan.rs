//! Finding the sections of a document without parsing it: light scanners for TOML's top-level
//! tables and YAML's top-level keys (a small lexer for strings, brackets and comments), and
//! serde_json's `RawValue` for JSON.
//!
//! Parsing the whole file once into a value tree and deserializing sections from it is the
//! simpler alternative; the `config_section_source` group of `benches/benches/lazy.rs` compares
//! the two on a 1,000-section file.

use std::collections::HashMap;
use std::ops::Range;

/// Where one section's text is; a TOML section may have several (one per table of it).
pub(super) struct Span {
    /// The section's name, as a range of the text.
    pub(super) name: Range<usize>,
    /// The lines that belong to it.
    pub(super) region: Range<usize>,
}

/// The spans of every section, in file order.
pub(super) type SectionRegions = Vec<Span>;

/// Where `part`, a slice of `text`, lies in it.
fn offset_in(text: &str, part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - text.as_ptr() as usize;
    start..start + part.len()
}

/// Lines of `text` with the byte offset each starts at.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    text.split_inclusive('\n').map(move |line| {
        let start = offset;
        offset += line.len();
        (start, line)
    })
}

/// Finds TOML's top-level tables without parsing values. Tracks strings (multi-line ones too)
/// and brackets, so a line starting with `[` inside an array or string is not taken for a
/// header. Returns `None` when a header is too unusual to split on safely.
pub(super) fn scan_toml(text: &str) -> Option<(Range<usize>, SectionRegions)> {
    let mut sections = SectionRegions::new();
    let mut root_end = text.len();
    let mut open: Option<(Range<usize>, usize)> = None;
    let mut depth = 0_usize;
    let mut multiline: Option<&'static str> = None;
    for (start, line) in lines(text) {
        let trimmed = line.trim_start();
        if multiline.is_none() && depth == 0 && trimmed.starts_with('[') {
            let key = offset_in(text, toml_header_key(trimmed)?);
            if let Some((name, from)) = open.take() {
                sections.push(Span {
                    name,
                    region: from..start,
                });
            } else {
                root_end = start;
            }
            open = Some((key, start));
            continue;
        }
        scan_toml_value_line(line, &mut depth, &mut multiline)?;
    }
    if let Some((name, from)) = open {
        sections.push(Span {
            name,
            region: from..text.len(),
        });
    }
    Some((0..root_end, sections))
}

/// The first key of a table header line such as `[a.b]`, `[[a]]` or `["a b".c]`.
fn toml_header_key(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("[[").or_else(|| line.strip_prefix('['))?;
    let rest = rest.trim_start();
    let (key, after) = if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find('"')?;
        let key = &quoted[..end];
        if key.contains('\\') {
            return None;
        }
        (key, &quoted[end + 1..])
    } else if let Some(quoted) = rest.strip_prefix('\'') {
        let end = quoted.find('\'')?;
        (&quoted[..end], &quoted[end + 1..])
    } else {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        (&rest[..end], &rest[end..])
    };
    let after = after.trim_start();
    (after.starts_with('.') || after.starts_with(']')).then_some(key)
}

/// Follows strings and brackets through one line of key/value text.
fn scan_toml_value_line(
    line: &str,
    depth: &mut usize,
    multiline: &mut Option<&'static str>,
) -> Option<()> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(close) = *multiline {
            if line[i..].starts_with(close) {
                *multiline = None;
                i += 3;
            } else {
                i += if close == "\"\"\"" && bytes[i] == b'\\' {
                    2
                } else {
                    1
                };
            }
            continue;
        }
        match bytes[i] {
            b'#' => return Some(()),
            b'"' if line[i..].starts_with("\"\"\"") => {
                *multiline = Some("\"\"\"");
                i += 3;
            }
            b'\'' if line[i..].starts_with("'''") => {
                *multiline = Some("'''");
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            }
            b'[' | b'{' => {
                *depth += 1;
                i += 1;
            }
            b']' | b'}' => {
                *depth = depth.checked_sub(1)?;
                i += 1;
            }
            _ => i += 1,
        }
    }
    Some(())
}

/// Finds the keys of YAML's top-level block mapping: lines at column 0 of the form `key:`.
/// Returns `None` for anything else at column 0 (flow mappings, several documents, ...).
pub(super) fn scan_yaml(text: &str) -> Option<SectionRegions> {
    let mut sections = SectionRegions::new();
    let mut open: Option<(Range<usize>, usize)> = None;
    let mut seen_content = false;
    for (start, line) in lines(text) {
        let content = line.trim_end();
        if content.is_empty() || content.starts_with(' ') || content.starts_with('#') {
            continue;
        }
        if content == "---" && !seen_content {
            seen_content = true;
            continue;
        }
        seen_content = true;
        let key = offset_in(text, yaml_key(content)?);
        if let Some((name, from)) = open.take() {
            sections.push(Span {
                name,
                region: from..start,
            });
        }
        open = Some((key, start));
    }
    if let Some((name, from)) = open {
        sections.push(Span {
            name,
            region: from..text.len(),
        });
    }
    Some(sections)
}

fn yaml_key(line: &str) -> Option<&str> {
    let first = line.chars().next()?;
    if "-[]{}?*&!|>%@`,.'\"\t".contains(first) {
        return None;
    }
    let colon = line
        .find(": ")
        .or_else(|| line.strip_suffix(':').map(str::len))?;
    let key = &line[..colon];
    (!key.contains('#')).then(|| key.trim_end())
}

/// The top-level keys of a JSON object and where each value is, found by a syntax-only scan
/// (serde_json's `RawValue` skips values without building them).
pub(super) fn scan_json(text: &str) -> Option<HashMap<String, Range<usize>>> {
    let raw: HashMap<String, &serde_json::value::RawValue> = serde_json::from_str(text).ok()?;
    let base = text.as_ptr() as usize;
    Some(
        raw.into_iter()
            .map(|(key, value)| {
                let start = value.get().as_ptr() as usize - base;
                (key, start..start + value.get().len())
            })
            .collect(),
    )
}
