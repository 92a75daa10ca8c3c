//! What an optimization did, per file.

use std::path::PathBuf;

use serde::Serialize;

use crate::optimize::scorer::PairStats;

/// What happened to a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Removed: equal to an earlier entry after normalising case and whitespace.
    ExactDuplicate,
    /// Removed: at least the near-duplicate threshold similar to an earlier entry.
    NearDuplicate,
    /// Merged into the entry it matched (claude-mpm's merge rule).
    Consolidated,
    /// Removed to bring the file under its size limit (lowest priority, oldest first).
    SizeLimit,
    /// A repeated section heading whose lines were moved under the first section of that name.
    SectionMerged,
}

/// One removed or merged line, with the line it matched and the score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// What happened.
    pub action: Action,
    /// The section it was in.
    pub section: String,
    /// 1-based line number in the original file.
    pub line_number: usize,
    /// The line, without its ending.
    pub line: String,
    /// 1-based line number of the line it matched, if any.
    pub matched_line_number: Option<usize>,
    /// The line it matched, if any.
    pub matched: Option<String>,
    /// The similarity score (1.0 for an exact duplicate), if any.
    pub score: Option<f64>,
}

/// Something the user should know about a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// A short machine-readable kind: `dropped_line` (the `claude-mpm` profile reproduced a
    /// Python defect that loses this line), `over_limit` (still over the size limit).
    pub kind: String,
    /// A sentence for people.
    pub message: String,
    /// 1-based line number, if about one line.
    pub line_number: Option<usize>,
    /// The line, if about one line.
    pub line: Option<String>,
}

/// The result of optimizing (or analyzing) one file: claude-mpm's fields and ours.
///
/// `original_size`, `optimized_size` and `size_reduction` are character counts, as in
/// claude-mpm; the `*_bytes` fields are UTF-8 bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Report {
    /// The file, when one was read.
    pub path: Option<PathBuf>,
    /// The agent id from the file name (`engineer` for `engineer_memories.md`).
    pub agent_id: Option<String>,
    /// `"default"` or `"claude-mpm"`.
    pub profile: String,
    /// Always `true` in a report (failures are errors).
    pub success: bool,
    /// Characters before.
    pub original_size: usize,
    /// Characters after.
    pub optimized_size: usize,
    /// `original_size - optimized_size` (negative when the file grew).
    pub size_reduction: i64,
    /// Percent of `original_size`, rounded to one decimal (0 for an empty file).
    pub size_reduction_percent: f64,
    /// Bytes before.
    pub original_bytes: usize,
    /// Bytes after.
    pub optimized_bytes: usize,
    /// Characters before (same as `original_size`).
    pub original_chars: usize,
    /// Characters after (same as `optimized_size`).
    pub optimized_chars: usize,
    /// Entries removed as duplicates (exact and near).
    pub duplicates_removed: usize,
    /// Of those, near duplicates.
    pub near_duplicates_removed: usize,
    /// Entries merged into another.
    pub items_consolidated: usize,
    /// Sections whose entry order changed (claude-mpm counts sections, not items).
    pub items_reordered: usize,
    /// Sections with a removal or merge.
    pub sections_optimized: usize,
    /// Repeated sections merged into the first of their name.
    pub sections_merged: usize,
    /// Entries removed by the size policy.
    pub size_limit_removed: usize,
    /// The backup written before the file was replaced.
    pub backup_created: Option<PathBuf>,
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
    /// Whether the output differs from the input.
    pub changed: bool,
    /// Whether the file was replaced.
    pub written: bool,
    /// When the optimization ran (UTC, ISO 8601).
    pub timestamp: String,
    /// Every removed or merged line.
    pub audit: Vec<AuditEntry>,
    /// Warnings (dropped lines in the `claude-mpm` profile, a file still over its limit).
    pub warnings: Vec<Warning>,
    /// How many similarity pairs were pruned and computed.
    pub pairs: PairStats,
}

impl Report {
    pub(crate) fn set_sizes(&mut self, before: &str, after: &str) {
        self.original_chars = before.chars().count();
        self.optimized_chars = after.chars().count();
        self.original_bytes = before.len();
        self.optimized_bytes = after.len();
        self.original_size = self.original_chars;
        self.optimized_size = self.optimized_chars;
        self.size_reduction = self.original_size as i64 - self.optimized_size as i64;
        self.size_reduction_percent = if self.original_size == 0 {
            0.0
        } else {
            let p = self.size_reduction as f64 / self.original_size as f64 * 100.0;
            format!("{p:.1}").parse().unwrap_or(p)
        };
        self.changed = before != after;
    }

    /// `optimized_bytes / original_bytes` (1.0 for an empty file).
    pub fn compression_ratio(&self) -> f64 {
        if self.original_bytes == 0 {
            1.0
        } else {
            self.optimized_bytes as f64 / self.original_bytes as f64
        }
    }
}
