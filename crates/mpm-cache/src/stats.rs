//! The statistics of every tier and of loads, recorded into `mpm-metrics` handles.

use mpm_metrics::{Counter, Histogram, IntGauge, Registry, Unit};

use crate::Error;

/// Why an entry left a tier, as told to an eviction listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Evicted to stay within the entry or weight bound (or by [`shrink_to`](crate::MemoryTier::shrink_to)).
    Capacity,
    /// Its time to live ran out.
    Expired,
    /// Removed on purpose: `remove`, `clear`, or an invalidation by key, prefix, tag or pattern.
    Invalidated,
    /// Overwritten by an insert of the same key.
    Replaced,
}

/// The counters of one tier. Every update is one relaxed atomic operation on an `mpm-metrics`
/// handle; [`TierStats::register`] puts the same handles in a [`Registry`].
#[derive(Clone, Default)]
pub struct TierStats {
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) inserts: Counter,
    pub(crate) evicted_capacity: Counter,
    pub(crate) expired: Counter,
    pub(crate) invalidated: Counter,
    pub(crate) replaced: Counter,
    pub(crate) entries: IntGauge,
    pub(crate) weight: IntGauge,
}

/// A point-in-time copy of a tier's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that found nothing (or only an expired entry).
    pub misses: u64,
    /// Inserts.
    pub inserts: u64,
    /// Entries evicted by the capacity bound.
    pub evicted_capacity: u64,
    /// Entries reclaimed because their TTL ran out.
    pub expired: u64,
    /// Entries removed by `remove`, `clear` or an invalidation.
    pub invalidated: u64,
    /// Entries overwritten by an insert of the same key.
    pub replaced: u64,
    /// Entries held when the snapshot was taken.
    pub entries: u64,
    /// Total weight held when the snapshot was taken.
    pub weight: u64,
}

impl StatsSnapshot {
    /// `hits / (hits + misses)`, or 0 before the first lookup.
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

impl TierStats {
    /// Counters registered in `registry` as `cache_*` metrics labelled `cache=<name>` and
    /// `tier=<tier>`.
    pub fn register(registry: &Registry, name: &str, tier: &str) -> Result<Self, Error> {
        let l = [("cache", name), ("tier", tier)];
        let ev = |cause: &str| {
            registry.counter(
                "cache_evictions_total",
                &[("cache", name), ("tier", tier), ("cause", cause)],
            )
        };
        Ok(Self {
            hits: registry.counter("cache_hits_total", &l)?,
            misses: registry.counter("cache_misses_total", &l)?,
            inserts: registry.counter("cache_inserts_total", &l)?,
            evicted_capacity: ev("capacity")?,
            expired: ev("expired")?,
            invalidated: ev("invalidated")?,
            replaced: ev("replaced")?,
            entries: registry.int_gauge("cache_entries", &l)?,
            weight: registry.int_gauge("cache_weight", &l)?,
        })
    }

    pub(crate) fn removed(&self, cause: RemovalCause) {
        match cause {
            RemovalCause::Capacity => self.evicted_capacity.inc(),
            RemovalCause::Expired => self.expired.inc(),
            RemovalCause::Invalidated => self.invalidated.inc(),
            RemovalCause::Replaced => self.replaced.inc(),
        }
    }

    pub(crate) fn snapshot(&self, entries: u64, weight: u64) -> StatsSnapshot {
        self.entries.set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.weight.set(i64::try_from(weight).unwrap_or(i64::MAX));
        StatsSnapshot {
            hits: self.hits.get(),
            misses: self.misses.get(),
            inserts: self.inserts.get(),
            evicted_capacity: self.evicted_capacity.get(),
            expired: self.expired.get(),
            invalidated: self.invalidated.get(),
            replaced: self.replaced.get(),
            entries,
            weight,
        }
    }
}

/// The statistics of the loads a [`TieredCache`](crate::TieredCache) runs on misses (kept apart
/// from any tier's: a load is not a lookup).
#[derive(Clone, Default)]
pub struct LoadStats {
    pub(crate) ok: Counter,
    pub(crate) failed: Counter,
    pub(crate) latency: Histogram,
}

/// A point-in-time copy of [`LoadStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadSnapshot {
    /// Loader runs that produced a value.
    pub ok: u64,
    /// Loader runs that failed or panicked.
    pub failed: u64,
}

impl LoadStats {
    /// Handles registered in `registry` as `cache_loads_total{outcome}` and
    /// `cache_load_duration_seconds`, labelled `cache=<name>` (and `tier="l1"`, the label these
    /// series have always had).
    pub fn register(registry: &Registry, name: &str) -> Result<Self, Error> {
        let load = |outcome: &str| {
            registry.counter(
                "cache_loads_total",
                &[("cache", name), ("tier", "l1"), ("outcome", outcome)],
            )
        };
        Ok(Self {
            ok: load("ok")?,
            failed: load("error")?,
            latency: registry.histogram(
                "cache_load_duration_seconds",
                &[("cache", name), ("tier", "l1")],
                Unit::Seconds,
            )?,
        })
    }

    /// The load-latency histogram.
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }

    /// A snapshot of the counters.
    pub fn snapshot(&self) -> LoadSnapshot {
        LoadSnapshot {
            ok: self.ok.get(),
            failed: self.failed.get(),
        }
    }
}

impl std::fmt::Debug for LoadStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.snapshot(), f)
    }
}

/// What any [`Tier`](crate::Tier) reports about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TierSnapshot {
    /// Reads that found a live, intact entry.
    pub hits: u64,
    /// Reads that found nothing usable.
    pub misses: u64,
    /// Entries written.
    pub writes: u64,
    /// Calls that failed (a full disk, a server that did not answer).
    pub errors: u64,
    /// Damaged entries or stores found (each a counted miss).
    pub corrupt: u64,
}

impl TierSnapshot {
    /// A snapshot with these counts, for implementations outside the crate.
    pub fn new(hits: u64, misses: u64, writes: u64, errors: u64, corrupt: u64) -> Self {
        Self {
            hits,
            misses,
            writes,
            errors,
            corrupt,
        }
    }
}

impl std::fmt::Debug for TierStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierStats")
            .field("hits", &self.hits.get())
            .field("misses", &self.misses.get())
            .finish_non_exhaustive()
    }
}

/// Counters of the disk tier.
#[derive(Clone, Default)]
pub struct DiskStats {
    /// Reads that found a live, intact entry.
    pub hits: Counter,
    /// Reads that found nothing usable.
    pub misses: Counter,
    /// Entries written.
    pub writes: Counter,
    /// Writes that failed (disk full, read-only, ...).
    pub write_errors: Counter,
    /// Entries whose checksum or encoding was wrong: counted, removed and treated as a miss.
    pub corrupt: Counter,
    /// Store files that could not be opened as a database and were moved aside.
    pub corrupt_files: Counter,
    /// Entries evicted by the size bound.
    pub evicted: Counter,
    /// Expired entries found on read.
    pub expired: Counter,
}

impl DiskStats {
    /// Counters registered in `registry` as `cache_disk_*_total` labelled `cache=<name>`.
    pub fn register(registry: &mpm_metrics::Registry, name: &str) -> Result<Self, Error> {
        let c =
            |what: &str| registry.counter(&format!("cache_disk_{what}_total"), &[("cache", name)]);
        Ok(Self {
            hits: c("hits")?,
            misses: c("misses")?,
            writes: c("writes")?,
            write_errors: c("write_errors")?,
            corrupt: c("corrupt_entries")?,
            corrupt_files: c("corrupt_files")?,
            evicted: c("evictions")?,
            expired: c("expired")?,
        })
    }
}

impl DiskStats {
    /// The counts any tier reports.
    pub fn snapshot(&self) -> TierSnapshot {
        TierSnapshot {
            hits: self.hits.get(),
            misses: self.misses.get(),
            writes: self.writes.get(),
            errors: self.write_errors.get(),
            corrupt: self.corrupt.get() + self.corrupt_files.get(),
        }
    }
}

impl std::fmt::Debug for DiskStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStats")
            .field("hits", &self.hits.get())
            .field("misses", &self.misses.get())
            .field("corrupt", &self.corrupt.get())
            .finish_non_exhaustive()
    }
}
