//! The statistics of every tier and of loads: `mpm-metrics` handles, standalone or (given
//! `.metrics(&registry, name)`, see `metrics.rs`) registered in a registry.

use mpm_metrics::{Counter, Histogram};

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

/// The counters of a memory tier (or of a [`TieredCache`](crate::TieredCache)'s lookups).
/// Every update is one relaxed store on an `mpm-metrics` handle; with `.metrics(&registry,
/// name)` on the builder, the handles are the registry's.
#[derive(Clone, Default)]
pub struct TierStats {
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) inserts: Counter,
    pub(crate) evicted_capacity: Counter,
    pub(crate) expired: Counter,
    pub(crate) invalidated: Counter,
    pub(crate) replaced: Counter,
}

/// A point-in-time copy of a tier's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Lookups that found a live entry in memory (the L1).
    pub hits: u64,
    /// Lookups of a [`TieredCache`](crate::TieredCache) that the tier below the L1 answered
    /// (0 for a bare [`MemoryTier`](crate::MemoryTier)).
    pub l2_hits: u64,
    /// Lookups that no tier answered (one per lookup, however many tiers were asked).
    pub misses: u64,
    /// Calls to the tier below the L1 that failed (0 for a bare
    /// [`MemoryTier`](crate::MemoryTier)).
    pub l2_errors: u64,
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
    /// The share of lookups answered by any tier: `(hits + l2_hits) / lookups`, or 0 before
    /// the first lookup.
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.l2_hits + self.misses;
        if total == 0 {
            0.0
        } else {
            (self.hits + self.l2_hits) as f64 / total as f64
        }
    }
}

impl TierStats {
    #[inline]
    pub(crate) fn removed(&self, cause: RemovalCause) {
        match cause {
            RemovalCause::Capacity => self.evicted_capacity.inc(),
            RemovalCause::Expired => self.expired.inc(),
            RemovalCause::Invalidated => self.invalidated.inc(),
            RemovalCause::Replaced => self.replaced.inc(),
        }
    }

    pub(crate) fn snapshot(&self, entries: u64, weight: u64) -> StatsSnapshot {
        StatsSnapshot {
            hits: self.hits.get(),
            l2_hits: 0,
            misses: self.misses.get(),
            l2_errors: 0,
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

#[cfg(feature = "disk")]
/// Counters of the disk tier. Each read counts once: in `hits`, `misses`, `expired` or
/// `corrupt`.
#[derive(Clone, Default)]
pub struct DiskStats {
    /// Reads that found a live, intact entry.
    pub hits: Counter,
    /// Reads that found no entry.
    pub misses: Counter,
    /// Entries written.
    pub writes: Counter,
    /// Writes, removals and flushes that failed (disk full, read-only, ...).
    pub write_errors: Counter,
    /// Reads that found an entry whose checksum or encoding was wrong: counted, removed and
    /// treated as a miss.
    pub corrupt: Counter,
    /// Store files that could not be opened as a database and were moved aside.
    pub corrupt_files: Counter,
    /// Entries evicted by the size bound.
    pub evicted: Counter,
    /// Reads that found an expired entry (a miss).
    pub expired: Counter,
}

#[cfg(feature = "disk")]
impl DiskStats {
    /// The counts any tier reports.
    pub fn snapshot(&self) -> TierSnapshot {
        TierSnapshot {
            hits: self.hits.get(),
            misses: self.misses.get() + self.expired.get() + self.corrupt.get(),
            writes: self.writes.get(),
            errors: self.write_errors.get(),
            corrupt: self.corrupt.get() + self.corrupt_files.get(),
        }
    }
}

#[cfg(feature = "disk")]
impl std::fmt::Debug for DiskStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStats")
            .field("hits", &self.hits.get())
            .field("misses", &self.misses.get())
            .field("corrupt", &self.corrupt.get())
            .finish_non_exhaustive()
    }
}

/// What a [`TieredCache`](crate::TieredCache) counts about the tier below its L1, whatever
/// that tier is.
#[derive(Clone, Default)]
pub(crate) struct L2Stats {
    /// Lookups it answered.
    pub(crate) hits: Counter,
    /// Entries written into it.
    pub(crate) writes: Counter,
    /// Failed calls, by [`L2Op`].
    pub(crate) errors: [Counter; L2Op::ALL.len()],
    /// Bypasses started (see `tiered/bypass.rs`).
    pub(crate) bypasses: Counter,
}

/// What a call to the tier below the L1 was for, as the `op` label of its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum L2Op {
    Get,
    Put,
    Remove,
    Flush,
}

impl L2Op {
    pub(crate) const ALL: [L2Op; 4] = [L2Op::Get, L2Op::Put, L2Op::Remove, L2Op::Flush];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            L2Op::Get => "get",
            L2Op::Put => "put",
            L2Op::Remove => "remove",
            L2Op::Flush => "flush",
        }
    }
}

impl L2Stats {
    /// Counts a failed call.
    pub(crate) fn error(&self, op: L2Op) {
        self.errors[op as usize].inc();
    }

    pub(crate) fn error_count(&self) -> u64 {
        self.errors.iter().map(Counter::get).sum()
    }
}
