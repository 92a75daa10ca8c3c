//! What the optimizer does: [`Options`], the [`Profile`]s, priority [`Keywords`], the symbolic
//! link policy, and the [`Outcome`] of a run.

use std::sync::Arc;

use crate::report::Report;
use crate::similarity::{Indel, Similarity};

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
