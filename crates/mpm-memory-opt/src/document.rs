//! The lossless document model: a memory file as lines, each with its own line ending.

use std::fmt;
use std::ops::Range;

/// Why bytes could not be read as a memory file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The bytes are not valid UTF-8.
    #[error("not valid UTF-8 at byte {offset} (line {line}): memory files are UTF-8 text")]
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
        /// 1-based line number of that byte.
        line: usize,
    },
    /// The bytes hold a NUL byte, so this is a binary file, not a memory file.
    #[error("binary data (NUL byte) at byte {offset} (line {line}): not a memory file")]
    Binary {
        /// Byte offset of the first NUL byte.
        offset: usize,
        /// 1-based line number of that byte.
        line: usize,
    },
}

/// How a line ends in the original bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineEnding {
    /// `\n`.
    Lf,
    /// `\r\n`.
    CrLf,
    /// The last line of a file without a final newline.
    None,
}

impl LineEnding {
    /// The bytes of this ending.
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf => "\n",
            LineEnding::CrLf => "\r\n",
            LineEnding::None => "",
        }
    }
}

/// One line: its text without the line ending, and the ending.
///
/// A lone `\r` that is not followed by `\n` is part of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The text, without the line ending.
    pub text: String,
    /// The ending as it was in the file.
    pub ending: LineEnding,
}

/// What a line is, as the optimizer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A line that starts with `## `: it opens a section.
    SectionHeading,
    /// A line whose trimmed text starts with `<!--`.
    Comment,
    /// A list item: the trimmed text starts with `- `, `* ` or `+ `.
    Bullet {
        /// Number of whitespace characters before the marker (0 for a top-level item).
        indent: usize,
    },
    /// A line of whitespace only.
    Blank,
    /// Anything else (a `# title`, prose, a `Last Updated:` line, ...).
    Text,
}

/// A memory file parsed into lines; [`Document::render`] gives the original bytes back.
///
/// ```
/// use mpm_memory_opt::Document;
///
/// let bytes = "\u{feff}# Agent Memory\r\n\r\n## Learnings\r\n- item\r\n  - nested";
/// let doc = Document::parse(bytes.as_bytes())?;
/// assert_eq!(doc.render(), bytes);
/// assert_eq!(doc.sections()[0].name, "Learnings");
/// # Ok::<(), mpm_memory_opt::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// Whether the file starts with a UTF-8 byte order mark (kept out of the first line).
    pub bom: bool,
    /// The lines, in order. An empty file has none.
    pub lines: Vec<Line>,
}

/// A section of a [`Document`]: a `## ` heading and the lines up to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name: the heading's text after `## `, cut at the first `(` and trimmed.
    pub name: String,
    /// Index of the heading line.
    pub heading: usize,
    /// The lines of the section, heading included.
    pub lines: Range<usize>,
}

impl Document {
    /// Parses bytes. Fails on invalid UTF-8 and on binary data (a NUL byte).
    pub fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
        let line_of = |offset: usize| bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1;
        let text = std::str::from_utf8(bytes).map_err(|e| ParseError::InvalidUtf8 {
            offset: e.valid_up_to(),
            line: line_of(e.valid_up_to()),
        })?;
        if let Some(offset) = memchr_nul(bytes) {
            return Err(ParseError::Binary {
                offset,
                line: line_of(offset),
            });
        }
        Ok(Document::parse_str(text))
    }

    /// Parses text (which cannot be invalid UTF-8; NUL characters are kept as text).
    pub fn parse_str(text: &str) -> Document {
        let (bom, mut rest) = match text.strip_prefix('\u{feff}') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let mut lines = Vec::new();
        while !rest.is_empty() {
            match rest.find('\n') {
                Some(i) => {
                    let (body, ending) = match rest[..i].strip_suffix('\r') {
                        Some(b) => (b, LineEnding::CrLf),
                        None => (&rest[..i], LineEnding::Lf),
                    };
                    lines.push(Line {
                        text: body.to_owned(),
                        ending,
                    });
                    rest = &rest[i + 1..];
                }
                None => {
                    lines.push(Line {
                        text: rest.to_owned(),
                        ending: LineEnding::None,
                    });
                    rest = "";
                }
            }
        }
        Document { bom, lines }
    }

    /// The document as text, byte for byte what was parsed if nothing changed.
    pub fn render(&self) -> String {
        let len = self.lines.iter().map(|l| l.text.len() + 2).sum::<usize>() + 3;
        let mut out = String::with_capacity(len);
        if self.bom {
            out.push('\u{feff}');
        }
        for line in &self.lines {
            out.push_str(&line.text);
            out.push_str(line.ending.as_str());
        }
        out
    }

    /// The ending most lines use (`\n` when there are none), for lines the optimizer adds.
    pub fn dominant_ending(&self) -> LineEnding {
        let crlf = self
            .lines
            .iter()
            .filter(|l| l.ending == LineEnding::CrLf)
            .count();
        let lf = self
            .lines
            .iter()
            .filter(|l| l.ending == LineEnding::Lf)
            .count();
        if crlf > lf {
            LineEnding::CrLf
        } else {
            LineEnding::Lf
        }
    }

    /// The kind of line `i`.
    pub fn kind(&self, i: usize) -> LineKind {
        classify(&self.lines[i].text)
    }

    /// Lines before the first section heading (the title, limits comments, ...).
    pub fn header(&self) -> Range<usize> {
        let end = self
            .lines
            .iter()
            .position(|l| is_section_heading(&l.text))
            .unwrap_or(self.lines.len());
        0..end
    }

    /// The sections in file order. Repeated and unknown names are all listed.
    pub fn sections(&self) -> Vec<Section> {
        let headings: Vec<usize> = (0..self.lines.len())
            .filter(|&i| is_section_heading(&self.lines[i].text))
            .collect();
        headings
            .iter()
            .enumerate()
            .map(|(k, &h)| {
                let end = headings.get(k + 1).copied().unwrap_or(self.lines.len());
                Section {
                    name: section_name(&self.lines[h].text),
                    heading: h,
                    lines: h..end,
                }
            })
            .collect()
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

fn memchr_nul(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == 0)
}

/// Whether a line opens a section (`## ` at the very start, as claude-mpm reads it).
pub(crate) fn is_section_heading(text: &str) -> bool {
    text.starts_with("## ")
}

/// A section's name from its heading line: after `## `, cut at the first `(`, trimmed.
pub(crate) fn section_name(heading: &str) -> String {
    let rest = heading.strip_prefix("## ").unwrap_or(heading);
    let cut = rest.split('(').next().unwrap_or("");
    cut.trim_matches(is_py_space).to_owned()
}

/// Python's `str.isspace()`: Unicode whitespace plus the separators U+001C..U+001F.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Classifies one line of text.
pub(crate) fn classify(text: &str) -> LineKind {
    if is_section_heading(text) {
        return LineKind::SectionHeading;
    }
    let trimmed = text.trim_start_matches(is_py_space);
    if trimmed.is_empty() {
        return LineKind::Blank;
    }
    if trimmed.starts_with("<!--") {
        return LineKind::Comment;
    }
    if trimmed.starts_with("- ") || trimmed.starts_with("* ") || trimmed.starts_with("+ ") {
        let indent = text.chars().count() - trimmed.chars().count();
        return LineKind::Bullet { indent };
    }
    LineKind::Text
}

/// A bullet's content: the text after the leading whitespace and the list marker, trimmed.
///
/// Only the leading marker is removed, so `- use a - b` gives `use a - b`.
pub fn bullet_content(text: &str) -> &str {
    let t = text.trim_matches(is_py_space);
    let t = t
        .strip_prefix("- ")
        .or_else(|| t.strip_prefix("* "))
        .or_else(|| t.strip_prefix("+ "))
        .unwrap_or(t);
    t.trim_matches(is_py_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_odd_files() {
        for s in [
            "",
            "\n",
            "\r\n",
            "a",
            "a\r",
            "a\r\r\n",
            "\u{feff}",
            "\u{feff}x\n",
            "## A\n- a\n## A\n- b",
            "## (untitled)\n\n- x\n  - y\n<!-- c -->\ntext\n",
        ] {
            assert_eq!(Document::parse(s.as_bytes()).unwrap().render(), s);
        }
    }

    #[test]
    fn refuses_invalid_utf8_and_binary() {
        let e = Document::parse(b"ok\n\xff\xfe").unwrap_err();
        assert_eq!(e, ParseError::InvalidUtf8 { offset: 3, line: 2 });
        let e = Document::parse(b"a\nb\0c").unwrap_err();
        assert_eq!(e, ParseError::Binary { offset: 3, line: 2 });
        assert!(e.to_string().contains("binary"));
    }

    #[test]
    fn names_and_kinds() {
        assert_eq!(section_name("## Recent Learnings (v2)"), "Recent Learnings");
        assert_eq!(section_name("## (untitled)"), "");
        assert_eq!(classify("  - sub"), LineKind::Bullet { indent: 2 });
        assert_eq!(classify("<!-- x -->"), LineKind::Comment);
        assert_eq!(classify("   "), LineKind::Blank);
        assert_eq!(bullet_content("- use a - b "), "use a - b");
    }
}
