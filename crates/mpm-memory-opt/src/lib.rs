//! Keeps agent memory files small and useful: duplicate removal, consolidation, priority order,
//! safe rewrite.
//!
//! claude-mpm keeps one Markdown memory file per agent (`.claude-mpm/memories/{agent}_memories.md`,
//! formerly `{agent}_agent.md`). This crate removes exact and near duplicates, merges similar
//! entries, orders them by priority and keeps the file under a size limit, without losing a line
//! that is not a duplicate, and rewrites the file atomically after a backup.
//!
//! ```
//! use mpm_memory_opt::{Optimizer, Options};
//!
//! let input = "# Engineer Agent Memory\n\n## Learnings\n- Use pathlib\n- use   pathlib\n- Tests must use fixtures\n";
//! let outcome = Optimizer::new(Options::default()).optimize_bytes(input.as_bytes())?;
//! assert_eq!(outcome.output, "# Engineer Agent Memory\n\n## Learnings\n- Tests must use fixtures\n- Use pathlib\n");
//! assert_eq!(outcome.report.duplicates_removed, 1);
//! assert_eq!(outcome.report.audit[0].matched.as_deref(), Some("- Use pathlib"));
//! # Ok::<(), mpm_memory_opt::Error>(())
//! ```
//!
//! The pieces, in the order a user meets them:
//!
//! - [`Optimizer`] runs [`Options`] on text ([`Optimizer::optimize_text`]) or on a file
//!   ([`Optimizer::optimize_file`], with [`FileOptions`] for a dry run).
//! - [`Options::default`] is the `default` [`Profile`]; [`Options::claude_mpm`] reproduces
//!   claude-mpm v4.0.29's optimizer byte for byte.
//! - [`Report`]: claude-mpm's result fields plus an audit list ([`AuditEntry`]) of every removed
//!   or merged line, the line it matched and the score.
//! - [`MemoryStore`]: a memories directory; [`is_memory_file`] says which files are memory files.
//! - [`Document`]: the lossless model of a memory file the optimizer works on.
//! - [`Similarity`]: [`Indel`] (the default) and [`Difflib`] (Python's ratio), or your own.
//!
//! # The two profiles
//!
//! Both run per section (never across sections), on list items (`- `, `* `, `+ `).
//!
//! `claude-mpm` ([`Options::claude_mpm`]) is claude-mpm v4.0.29's `MemoryOptimizer`, step by
//! step: universal newlines, sections in a dict (a repeated name or `Name (suffix)` replaces the
//! earlier section, an empty name is lost), exact duplicates with every `- ` removed from the key,
//! greedy consolidation at difflib ratio 0.70 with its merge rule, priority sort with alphabetical
//! ties, header/other/bullet regrouping, the fixed section order, the final newline lost when the
//! last section has bullets, and the `Last Updated` comment rewritten (UTC unless
//! [`Options::timestamp`] is set). Every line it drops is a [`Warning`] of kind `dropped_line`.
//! Tests compare it with fixtures produced by the Python code (the example of claude-mpm's
//! format and 200 random files with odd layouts): identical bytes apart from the timestamp, and
//! identical result fields.
//!
//! `default` ([`Options::default`]) fixes the defects instead:
//!
//! - nothing outside list items moves or disappears; sections keep their order and place, the
//!   final newline and CRLF endings stay;
//! - repeated sections are merged into the first of their name (reported as
//!   [`Action::SectionMerged`]), an empty section name is a section like any other;
//! - the exact-duplicate key strips only the leading list marker;
//! - near duplicates (0.85) are removed; of the two, the longer text is kept, in the earlier
//!   place; consolidation (0.70) uses claude-mpm's merge rule with readable words (runs of
//!   letters and digits, common words such as `with` left out); the stages repeat until nothing
//!   changes, so optimizing twice gives the same bytes as once (with a symmetric metric such as
//!   the default [`Indel`]);
//! - priority order is stable (ties keep their order), within each run of consecutive items;
//! - an item with nested lines is kept as it is (never removed, merged or split from them);
//! - a size policy: over [`Options::size_limit`] (80 KB), the lowest-priority, oldest items of
//!   `Recent Learnings` (`Learnings` in the flat layout) go first, each one in the audit list; a
//!   file still over the limit gets an `over_limit` warning.
//!
//! # How pairs are compared
//!
//! Every candidate pair of a section is scored once, up front, into per-section partner lists
//! that the stages read; an entry whose text changes is compared again at once. Pairs that cannot
//! reach the lowest threshold are ruled out by a length bound and a 64-bucket character-count
//! bound; the rest run a bit-parallel LCS (Hyyrö's recurrence) that stops as soon as the
//! threshold is out of reach, four patterns at a time in AVX2 lanes when the CPU has them. A
//! section with 50,000 candidate pairs or more is split over [`Options::threads`] threads.
//! Pruning, the vector path and the thread count never change a result: tests compare each with
//! the plain computation. Speed is measured by `benches/benches/memory_opt.rs`.
//!
//! # Symbolic links
//!
//! By default a path that is a symbolic link is refused ([`Error::Symlink`]): replacing the
//! link would cut it, and writing through it may surprise. With [`SymlinkPolicy::Follow`] the
//! link's target is read, backed up beside the target and replaced atomically; the link stays.
//!
//! # Metrics
//!
//! Following the [`mpm_metrics::contract`]: [`Optimizer::builder`] takes
//! `.metrics(&registry, name)` and claims the name at [`build`](OptimizerBuilder::build)
//! (component `memory_opt`). Every document is counted: the `_count` of the histogram is exact.
//!
#![doc = include_str!("metrics.md")]
//!
//! # Features
//!
//! None. The [`generator`] module (synthetic files with ground truth) is always built.
//!
//! # Unsafe code
//!
//! One call: the AVX2 lanes are safe code in a `#[target_feature(enable = "avx2,popcnt")]`
//! function, and calling it is `unsafe`; it happens only after a run-time check that the CPU
//! has both (`is_x86_feature_detected!`). Without AVX2 the same answers come from the scalar
//! kernels.
//!
//! Minimum supported Rust version: 1.95.
#![deny(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod claude;
mod document;
mod files;
pub mod generator;
mod metrics;
mod optimize;
mod options;
mod report;
mod similarity;

use std::path::{Path, PathBuf};
use std::time::Instant;

use metrics::Metrics;

pub use document::{Document, Line, LineEnding, LineKind, ParseError, Section, bullet_content};
pub use files::{MemoryStore, agent_id, is_memory_file, write_atomic};
pub use optimize::scorer::PairStats;
pub use options::{Keywords, Options, Outcome, Profile, SymlinkPolicy};
pub use report::{Action, AuditEntry, Report, Warning};
pub use similarity::{Difflib, Indel, Similarity};

/// Why a file could not be optimized (every such variant names the file), or why an
/// optimizer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: ParseError,
    },
    /// Bytes given to [`Optimizer::optimize_bytes`] are not UTF-8 text.
    #[error(transparent)]
    Bytes(#[from] ParseError),
    /// The file is over the hard size limit.
    #[error("{}: {size} bytes, over the {limit}-byte limit for memory files", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit ([`Options::max_file_bytes`]).
        limit: u64,
    },
    /// The path is a symbolic link and [`Options::symlinks`] refuses links.
    #[error("{}: is a symbolic link; refused (use the follow-symlinks policy to optimize its target)", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// `README.md` is never a memory file and is never touched.
    #[error("{}: README.md is not a memory file and is never modified", path.display())]
    Readme {
        /// The file.
        path: PathBuf,
    },
    /// The path is not a regular file.
    #[error("{}: not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The metrics registry refused an optimizer's metrics at
    /// [`build`](OptimizerBuilder::build) (another optimizer of the same name reports into it).
    #[error("cannot register the optimizer's metrics: {source}")]
    Metrics {
        /// The registry's error.
        #[from]
        source: mpm_metrics::Error,
    },
}

/// Optimizes memory text and files with one set of [`Options`].
///
/// [`Optimizer::new`] is an optimizer without metrics; [`Optimizer::builder`] adds them.
#[derive(Debug, Clone, Default)]
pub struct Optimizer {
    options: Options,
    metrics: Option<Metrics>,
}

impl Optimizer {
    /// An optimizer with these options.
    pub fn new(options: Options) -> Optimizer {
        Optimizer {
            options,
            metrics: None,
        }
    }

    /// A builder, for an optimizer that reports into a metrics registry.
    pub fn builder(options: Options) -> OptimizerBuilder {
        OptimizerBuilder {
            options,
            metrics: None,
        }
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Optimizes text (no file is touched).
    pub fn optimize_text(&self, text: &str) -> Outcome {
        let start = Instant::now();
        let (output, mut report) = match self.options.profile {
            Profile::Default => {
                optimize::optimize_default(&Document::parse_str(text), &self.options)
            }
            Profile::ClaudeMpm => {
                let ts = self
                    .options
                    .timestamp
                    .clone()
                    .unwrap_or_else(files::timestamp_now);
                claude::optimize_claude(text, &self.options, &ts)
            }
        };
        report.timestamp = files::iso_now();
        if let Some(metrics) = &self.metrics {
            metrics.optimized(&report, start.elapsed());
        }
        Outcome { output, report }
    }

    /// Optimizes bytes; fails on invalid UTF-8 and binary data.
    pub fn optimize_bytes(&self, bytes: &[u8]) -> Result<Outcome, Error> {
        Document::parse(bytes)?;
        let text = std::str::from_utf8(bytes).map_err(|e| ParseError::InvalidUtf8 {
            offset: e.valid_up_to(),
            line: 0,
        })?;
        Ok(self.optimize_text(text))
    }

    /// Optimizes a file: reads it (refusing README.md, links per policy, files over the hard
    /// limit), optimizes, and unless a dry run ([`FileOptions`]) or nothing changed, writes a backup and replaces
    /// the file atomically.
    pub fn optimize_file(&self, path: &Path, options: FileOptions) -> Result<Report, Error> {
        self.optimize_file_full(path, options).map(|f| f.report)
    }

    /// [`Optimizer::optimize_file`], also returning the text before and after (for a diff).
    pub fn optimize_file_full(
        &self,
        path: &Path,
        options: FileOptions,
    ) -> Result<FileOutcome, Error> {
        let result = self.optimize_file_inner(path, options);
        if let Some(metrics) = &self.metrics {
            match &result {
                Ok(outcome) if outcome.report.written => metrics.written(),
                Ok(_) => {}
                Err(error) => metrics.failed(error),
            }
        }
        result
    }

    fn optimize_file_inner(&self, path: &Path, options: FileOptions) -> Result<FileOutcome, Error> {
        let dry_run = options.dry_run;
        let (target, bytes) = files::read_checked(path, &self.options)?;
        let parse_error = |source| Error::Parse {
            path: path.to_owned(),
            source,
        };
        Document::parse(&bytes).map_err(parse_error)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            parse_error(ParseError::InvalidUtf8 {
                offset: e.utf8_error().valid_up_to(),
                line: 0,
            })
        })?;
        let outcome = self.optimize_text(&text);
        let mut report = outcome.report;
        report.path = Some(path.to_owned());
        report.agent_id = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(agent_id)
            .map(str::to_owned);
        report.dry_run = dry_run;
        if !dry_run && outcome.output != text {
            report.backup_created = Some(files::write_backup(&target, text.as_bytes())?);
            write_atomic(&target, outcome.output.as_bytes())?;
            report.written = true;
        }
        Ok(FileOutcome {
            report,
            before: text,
            after: outcome.output,
        })
    }
}

/// Builds an [`Optimizer`]: `Optimizer::builder(options)`, then
/// [`metrics`](OptimizerBuilder::metrics), then [`build`](OptimizerBuilder::build).
///
/// ```
/// use mpm_memory_opt::{Optimizer, Options};
/// use mpm_metrics::Registry;
///
/// let registry = Registry::default();
/// let optimizer = Optimizer::builder(Options::default())
///     .metrics(&registry, "memories")
///     .build()?;
/// optimizer.optimize_text("## Learnings\n- a\n- a\n");
/// let text = registry.render_prometheus();
/// assert!(text.contains("mpm_memory_opt_entries_removed_total{name=\"memories\"} 1\n"));
/// # Ok::<(), mpm_memory_opt::Error>(())
/// ```
#[derive(Debug)]
pub struct OptimizerBuilder {
    options: Options,
    metrics: Option<(mpm_metrics::Registry, String)>,
}

impl OptimizerBuilder {
    /// Reports into `registry` under the instance name `name` (the label `name`): the metrics
    /// listed in the [crate docs](crate#metrics). The name is claimed at
    /// [`build`](OptimizerBuilder::build).
    #[must_use]
    pub fn metrics(mut self, registry: &mpm_metrics::Registry, name: &str) -> Self {
        self.metrics = Some((registry.clone(), name.to_owned()));
        self
    }

    /// The optimizer.
    ///
    /// # Errors
    ///
    /// [`Error::Metrics`] when the registry refuses the metrics (another optimizer of the same
    /// name reports into it).
    pub fn build(self) -> Result<Optimizer, Error> {
        let metrics = match self.metrics {
            Some((registry, name)) => Some(Metrics::new(&registry, &name)?),
            None => None,
        };
        Ok(Optimizer {
            options: self.options,
            metrics,
        })
    }
}

/// How [`Optimizer::optimize_file`] treats the file.
///
/// ```
/// use mpm_memory_opt::FileOptions;
///
/// assert!(!FileOptions::default().dry_run);
/// assert!(FileOptions::dry_run().dry_run);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileOptions {
    /// Report what would change, write nothing (no backup, no replacement).
    pub dry_run: bool,
}

impl FileOptions {
    /// Options that write nothing.
    pub fn dry_run() -> FileOptions {
        FileOptions { dry_run: true }
    }
}

/// A file's report with its text before and after.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    /// The report.
    pub report: Report,
    /// The file's text before.
    pub before: String,
    /// The optimized text (written unless a dry run).
    pub after: String,
}
