//! Parser errors of the three formats, tied back to the file, the section, the field and the
//! line.

use super::LazyConfig;
use crate::error::Error;

/// A parser error before it is tied to the file.
pub(super) struct RawError {
    pub(super) message: String,
    pub(super) path: Option<String>,
    pub(super) at: At,
}

/// Where an error is, as the parser says.
pub(super) enum At {
    /// A byte offset in the text that was parsed.
    #[cfg_attr(not(feature = "toml"), allow(dead_code))]
    Offset(usize),
    /// A 1-based line in the text that was parsed.
    Line(usize),
    Nowhere,
}

/// How the parsed text maps back to the file: (offset in parsed text, offset in file) pairs.
pub(super) struct Chunks(pub(super) Vec<(usize, usize)>);

impl Chunks {
    pub(super) fn identity() -> Self {
        Self(vec![(0, 0)])
    }

    fn file_offset(&self, offset: usize) -> usize {
        let i = self.0.partition_point(|(start, _)| *start <= offset);
        let (parsed, file) = self.0[i.saturating_sub(1)];
        file + (offset - parsed)
    }
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

impl RawError {
    pub(super) fn into_error(
        self,
        config: &LazyConfig,
        section: &str,
        file_text: &str,
        chunks: &Chunks,
    ) -> Error {
        let line = match self.at {
            At::Offset(offset) => Some(line_of(file_text, chunks.file_offset(offset))),
            At::Line(line) => Some(line),
            At::Nowhere => None,
        };
        let field = self.path.and_then(|path| {
            let inner = if section.is_empty() {
                path.as_str()
            } else {
                path.strip_prefix(section)
                    .map(|rest| rest.trim_start_matches('.'))
                    .unwrap_or(path.as_str())
            };
            // serde_path_to_error writes `?` for a position it could not name.
            let inner = inner.trim_end_matches('?').trim_end_matches('.');
            (!inner.is_empty() && inner != ".").then(|| inner.to_owned())
        });
        Error::ConfigParse {
            path: config.path.clone(),
            section: section.to_owned(),
            field,
            line,
            message: self.message,
        }
    }
}

pub(super) fn strip_location(message: String) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    }
}

#[cfg(feature = "toml")]
pub(super) fn toml_error(error: &toml::de::Error, path: Option<String>) -> RawError {
    RawError {
        message: error.message().trim().to_owned(),
        path,
        at: error
            .span()
            .map_or(At::Nowhere, |span| At::Offset(span.start)),
    }
}

pub(super) fn json_error(error: &serde_json::Error, path: Option<String>) -> RawError {
    RawError {
        message: strip_location(error.to_string()),
        path,
        at: if error.line() == 0 {
            At::Nowhere
        } else {
            At::Line(error.line())
        },
    }
}

#[cfg(feature = "yaml")]
pub(super) fn yaml_error(error: &serde_norway::Error, path: Option<String>) -> RawError {
    let message = strip_location(error.to_string());
    // serde_norway prefixes nested errors with their path; the path is reported apart.
    let message = match &path {
        Some(p) => message
            .strip_prefix(&format!("{p}: "))
            .map(str::to_owned)
            .unwrap_or(message),
        None => message,
    };
    RawError {
        message,
        path,
        at: error
            .location()
            .map_or(At::Nowhere, |location| At::Line(location.line())),
    }
}

/// The error for a format whose feature is off; [`LazyConfig::open_as`](crate::LazyConfig)
/// refuses such a file first, so this is reached only if that check is bypassed.
#[cfg(not(all(feature = "toml", feature = "yaml")))]
pub(super) fn disabled_error(format: super::Format) -> RawError {
    RawError {
        message: format!("the {format:?} format is not enabled (a feature of mpm-lazy)"),
        path: None,
        at: At::Nowhere,
    }
}
