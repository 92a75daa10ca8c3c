//! How the cache reports into an `mpm-metrics` registry, following the
//! [contract](mpm_metrics::contract): a builder's `.metrics(&registry, name)` stores the pair,
//! `build()` (or `open()`) claims the scope `cache` (or `cache_disk`) and makes the handles
//! the registry's, and a collector sets the gauges at every scrape. Every metric is a row of
//! `metrics.md`, the table in the crate docs.

use mpm_metrics::{IntGauge, Registry, Scope, Unit};

use crate::stats::{L2Op, L2Stats, LoadStats, TierStats};

/// The registry and instance name given to a builder's `.metrics(..)`.
pub(crate) type Target = Option<(Registry, String)>;

/// The component of a [`MemoryTier`](crate::MemoryTier) or a
/// [`TieredCache`](crate::TieredCache).
pub(crate) const CACHE: &str = "cache";
/// The component of a [`DiskTier`](crate::DiskTier).
#[cfg(feature = "disk")]
pub(crate) const DISK: &str = "cache_disk";

/// The `tier` label of the memory tier, and of the tier below it.
pub(crate) const L1: &str = "l1";
pub(crate) const L2: &str = "l2";

type Result<T> = std::result::Result<T, mpm_metrics::Error>;

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The memory tier's counters, registered with `tier=<tier>`.
pub(crate) fn tier_stats(scope: &Scope, tier: &str) -> Result<TierStats> {
    let t = [("tier", tier)];
    let removed = |cause: &str| {
        scope.counter(
            "removals_total",
            "Entries that left the memory tier, by cause: capacity, expired, invalidated \
             (removed on purpose) or replaced.",
            &[("tier", tier), ("cause", cause)],
        )
    };
    Ok(TierStats {
        hits: scope.counter(
            "hits_total",
            "Lookups answered by a tier: l1 (memory) or l2 (the tier below it).",
            &t,
        )?,
        misses: scope.counter(
            "misses_total",
            "Lookups that no tier answered (one per lookup, however many tiers were asked).",
            &[],
        )?,
        inserts: scope.counter("inserts_total", "Entries written into a tier.", &t)?,
        evicted_capacity: removed("capacity")?,
        expired: removed("expired")?,
        invalidated: removed("invalidated")?,
        replaced: removed("replaced")?,
    })
}

/// The loads' counters and histogram.
pub(crate) fn load_stats(scope: &Scope) -> Result<LoadStats> {
    let load = |outcome: &str| {
        scope.counter(
            "loads_total",
            "Loader runs started by get_or_load, by outcome: ok or error (failed or panicked).",
            &[("outcome", outcome)],
        )
    };
    Ok(LoadStats {
        ok: load("ok")?,
        failed: load("error")?,
        latency: scope.histogram(
            "load_seconds",
            "Time each loader run took.",
            Unit::Seconds,
            &[],
        )?,
    })
}

/// The tiered cache's counters about the tier below its L1.
pub(crate) fn l2_stats(scope: &Scope) -> Result<L2Stats> {
    let t = [("tier", L2)];
    let error = |op: L2Op| {
        scope.counter(
            "errors_total",
            "Calls to a tier that failed, by operation: get (served as a miss), put, remove \
             (kept masked until applied) or flush.",
            &[("tier", L2), ("op", op.as_str())],
        )
    };
    Ok(L2Stats {
        hits: scope.counter(
            "hits_total",
            "Lookups answered by a tier: l1 (memory) or l2 (the tier below it).",
            &t,
        )?,
        writes: scope.counter("inserts_total", "Entries written into a tier.", &t)?,
        errors: [
            error(L2Op::Get)?,
            error(L2Op::Put)?,
            error(L2Op::Remove)?,
            error(L2Op::Flush)?,
        ],
        bypasses: scope.counter(
            "bypasses_total",
            "Times a tier was taken out of service after failing calls in a row (see \
             BypassPolicy).",
            &t,
        )?,
    })
}

/// The gauge of whether the tier below the L1 is bypassed.
pub(crate) fn bypassed_gauge(scope: &Scope) -> Result<IntGauge> {
    scope.int_gauge(
        "bypassed",
        "1 while the tier is bypassed after failing (or being probed), else 0, at scrape time.",
        &[("tier", L2)],
    )
}

/// The memory tier's size gauges, set by a collector.
pub(crate) struct SizeGauges {
    entries: IntGauge,
    weight: IntGauge,
}

impl SizeGauges {
    pub(crate) fn register(scope: &Scope, tier: &str) -> Result<Self> {
        let t = [("tier", tier)];
        Ok(Self {
            entries: scope.int_gauge(
                "entries",
                "Live entries in the memory tier, at scrape time.",
                &t,
            )?,
            weight: scope.int_gauge(
                "weight",
                "Total weight of the live entries in the memory tier (1 per entry without a \
                 weigher), at scrape time.",
                &t,
            )?,
        })
    }

    pub(crate) fn set(&self, entries: usize, weight: u64) {
        self.entries.set(gauge_value(entries as u64));
        self.weight.set(gauge_value(weight));
    }
}

/// The gauge of removals the tier below has not applied yet.
pub(crate) fn pending_gauge(scope: &Scope) -> Result<IntGauge> {
    scope.int_gauge(
        "pending_removals",
        "Removals the tier below the L1 has not applied yet (its reads of them are masked), \
         at scrape time.",
        &[("tier", L2)],
    )
}
