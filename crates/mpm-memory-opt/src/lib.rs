//! Keeps agent memory files small and useful: duplicate removal, consolidation, priority order,
//! safe rewrite.
//!
//! Work in progress: the lossless [`Document`] model and the [`Similarity`] metrics are here.
//!
//! ```
//! use mpm_memory_opt::{Difflib, Document, Similarity};
//!
//! let doc = Document::parse(b"## Learnings\r\n- one\r\n- two")?;
//! assert_eq!(doc.render(), "## Learnings\r\n- one\r\n- two");
//! assert_eq!(Difflib.ratio("abcd", "bcde"), 0.75);
//! # Ok::<(), mpm_memory_opt::ParseError>(())
//! ```
//!
//! Minimum supported Rust version: 1.95.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod document;
#[allow(dead_code)] // The optimizer that uses the prepared scorer lands next.
mod similarity;

pub use document::{
    Document, Line, LineEnding, LineKind, ParseError, Section, bullet_content, classify,
    is_py_space, is_section_heading, section_name,
};
pub use similarity::{
    Builtin, Difflib, Indel, PairStats, Similarity, difflib_ratio_chars, lcs_len, upper_bound,
};
