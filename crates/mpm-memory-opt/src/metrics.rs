//! What an [`Optimizer`](crate::Optimizer) built with `.metrics(&registry, name)` records (the
//! table is `metrics.md`, in the crate docs).

use std::time::Duration;

use mpm_metrics::{Counter, Histogram, Registry, Scope, Unit};

use crate::{Action, Error, Report};

/// The metrics of one optimizer; clones of the optimizer share them.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    documents: Counter,
    removed: Counter,
    bytes_saved: Counter,
    seconds: Histogram,
    written: Counter,
    errors: [Counter; REASONS.len()],
    // Held so the name stays claimed for as long as an optimizer (or a clone) lives.
    _scope: Scope,
}

/// The values of the `reason` label of `mpm_memory_opt_file_errors_total`, one per way a file
/// can fail (see [`Metrics::failed`]).
const REASONS: [&str; 6] = [
    "io",
    "parse",
    "too_large",
    "symlink",
    "readme",
    "not_a_file",
];

impl Metrics {
    /// The component of an optimizer's metrics: `mpm_memory_opt_*`.
    const COMPONENT: &'static str = "memory_opt";

    pub(crate) fn new(registry: &Registry, name: &str) -> Result<Self, mpm_metrics::Error> {
        let scope = registry.scope(Self::COMPONENT, name)?;
        let mut errors = Vec::with_capacity(REASONS.len());
        for reason in REASONS {
            errors.push(scope.counter(
                "file_errors_total",
                "Files that could not be optimized, by reason.",
                &[("reason", reason)],
            )?);
        }
        let errors = errors
            .try_into()
            .unwrap_or_else(|_| unreachable!("one counter per reason"));
        Ok(Self {
            documents: scope.counter(
                "documents_total",
                "Documents optimized (texts and files, dry runs included).",
                &[],
            )?,
            removed: scope.counter(
                "entries_removed_total",
                "List items removed or merged into another.",
                &[],
            )?,
            bytes_saved: scope.counter(
                "bytes_saved_total",
                "Bytes by which the optimized documents are smaller than the originals.",
                &[],
            )?,
            seconds: scope.histogram(
                "optimize_seconds",
                "Time spent optimizing one document's text.",
                Unit::Seconds,
                &[],
            )?,
            written: scope.counter(
                "files_written_total",
                "Files replaced by their optimized text (after a backup).",
                &[],
            )?,
            errors,
            _scope: scope,
        })
    }

    /// Records one optimized document.
    pub(crate) fn optimized(&self, report: &Report, elapsed: Duration) {
        self.documents.inc();
        let removed = report
            .audit
            .iter()
            .filter(|a| a.action != Action::SectionMerged)
            .count();
        self.removed.add(removed as u64);
        self.bytes_saved
            .add(report.original_bytes.saturating_sub(report.optimized_bytes) as u64);
        self.seconds.record_duration(elapsed);
    }

    /// Records a file replaced by its optimized text.
    pub(crate) fn written(&self) {
        self.written.inc();
    }

    /// Records a file that could not be optimized.
    pub(crate) fn failed(&self, error: &Error) {
        let reason = match error {
            Error::Io { .. } => 0,
            Error::Parse { .. } | Error::Bytes(_) => 1,
            Error::TooLarge { .. } => 2,
            Error::Symlink { .. } => 3,
            Error::Readme { .. } => 4,
            Error::NotAFile { .. } => 5,
            // Only `build` fails this way, never a file.
            Error::Metrics { .. } => return,
        };
        self.errors[reason].inc();
    }
}
