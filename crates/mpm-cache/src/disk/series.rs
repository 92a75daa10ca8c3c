//! The disk tier's series (`mpm_cache_disk_*`): counters mirrored from its [`DiskStats`] and
//! gauges of its size, all set by its collector at every scrape.

use std::sync::Mutex;

use mpm_metrics::{Counter, IntGauge, Scope};

use crate::stats::DiskStats;

type Result<T> = std::result::Result<T, mpm_metrics::Error>;

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A disk tier's series: counters mirrored from its [`DiskStats`] and gauges of its size, all
/// set by its collector.
pub(crate) struct DiskMetrics {
    /// (source, registry series) pairs, mirrored under the lock so that two scrapes at once
    /// do not both add the same difference.
    mirrored: Mutex<Vec<(Counter, Counter)>>,
    entries: IntGauge,
    bytes: IntGauge,
}

impl DiskMetrics {
    pub(crate) fn register(scope: &Scope, stats: &DiskStats) -> Result<Self> {
        let read = |outcome: &str| {
            scope.counter(
                "reads_total",
                "Reads by outcome: hit, miss (no entry), expired, or corrupt (a damaged entry, \
                 removed).",
                &[("outcome", outcome)],
            )
        };
        let mirrored = vec![
            (stats.hits.clone(), read("hit")?),
            (stats.misses.clone(), read("miss")?),
            (stats.expired.clone(), read("expired")?),
            (stats.corrupt.clone(), read("corrupt")?),
            (
                stats.writes.clone(),
                scope.counter("writes_total", "Entries written.", &[])?,
            ),
            (
                stats.write_errors.clone(),
                scope.counter(
                    "write_errors_total",
                    "Writes, removals and flushes that failed (a full disk, a read-only \
                     directory).",
                    &[],
                )?,
            ),
            (
                stats.corrupt_files.clone(),
                scope.counter(
                    "corrupt_files_total",
                    "Store files found damaged, moved aside and replaced by an empty store.",
                    &[],
                )?,
            ),
            (
                stats.evicted.clone(),
                scope.counter(
                    "evictions_total",
                    "Entries evicted to stay within the byte bound.",
                    &[],
                )?,
            ),
        ];
        Ok(Self {
            mirrored: Mutex::new(mirrored),
            entries: scope.int_gauge(
                "entries",
                "Entries stored (live or expired but not yet removed), at scrape time.",
                &[],
            )?,
            bytes: scope.int_gauge(
                "size_bytes",
                "Bytes stored (keys and records), at scrape time.",
                &[],
            )?,
        })
    }

    /// Brings every series up to date; `size` is the store's (entries, bytes), if it could
    /// be read.
    pub(crate) fn collect(&self, size: Option<(u64, u64)>) {
        let mirrored = self
            .mirrored
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (source, series) in mirrored.iter() {
            series.absolute(source.get());
        }
        if let Some((entries, bytes)) = size {
            self.entries.set(gauge_value(entries));
            self.bytes.set(gauge_value(bytes));
        }
    }
}
