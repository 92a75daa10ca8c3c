//! `TieredCacheBuilder`: the L1 (a `MemoryTier` builder), an optional L2 (any `Tier`), and
//! where the statistics go.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use mpm_metrics::Registry;

use super::entry::Stored;
use super::{Inner, TieredCache, lock};
use crate::Error;
use crate::memory::{DefaultHashBuilder, MemoryTier, MemoryTierBuilder};
use crate::stats::{LoadStats, RemovalCause, TierStats};
use crate::tier::Tier;

/// Builds a [`TieredCache`].
///
/// ```
/// use mpm_cache::{DiskTier, MemoryTier, TieredCache};
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir().unwrap();
/// let cache: TieredCache<String> = TieredCache::builder()
///     .l1(MemoryTier::builder()
///         .max_entries(NonZeroUsize::new(50_000).unwrap())
///         .default_ttl(Some(Duration::from_secs(300))))
///     .l2(DiskTier::builder(dir.path()).open()?)
///     .build()?;
/// # let _ = cache;
/// # Ok::<(), mpm_cache::Error>(())
/// ```
pub struct TieredCacheBuilder<V, S = DefaultHashBuilder> {
    l1: MemoryTierBuilder<Arc<str>, V, S>,
    l2: Option<Arc<dyn Tier<V>>>,
    metrics: Option<(TierStats, LoadStats)>,
}

impl<V, S> fmt::Debug for TieredCacheBuilder<V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredCacheBuilder")
            .field("l2", &self.l2.is_some())
            .finish_non_exhaustive()
    }
}

impl<V: Clone + Send + Sync + 'static> TieredCacheBuilder<V> {
    pub(super) fn new() -> Self {
        Self {
            l1: MemoryTier::builder(),
            l2: None,
            metrics: None,
        }
    }
}

impl<V, S> TieredCacheBuilder<V, S>
where
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// The L1: bounds, weigher, default TTL (which the L2 writes use too), clock, hasher,
    /// policy and eviction listener, as for a bare [`MemoryTier`] (default:
    /// `MemoryTier::builder()`, 10,000 entries, no TTL).
    pub fn l1<S2>(self, l1: MemoryTierBuilder<Arc<str>, V, S2>) -> TieredCacheBuilder<V, S2> {
        TieredCacheBuilder {
            l1,
            l2: self.l2,
            metrics: self.metrics,
        }
    }

    /// Adds a tier below the L1 (a [`DiskTier`](crate::DiskTier), or any [`Tier`]): reads fall
    /// through to it (promoting hits to L1), writes and invalidations reach it.
    pub fn l2(mut self, l2: impl Tier<V> + 'static) -> Self {
        self.l2 = Some(Arc::new(l2));
        self
    }

    /// Records the L1's and the loads' statistics into `registry` under `cache=<name>`.
    pub fn metrics(mut self, registry: &Registry, name: &str) -> Result<Self, Error> {
        self.metrics = Some((
            TierStats::register(registry, name, "l1")?,
            LoadStats::register(registry, name)?,
        ));
        Ok(self)
    }

    /// Builds the cache.
    pub fn build(self) -> Result<TieredCache<V, S>, Error> {
        let pending: Arc<Mutex<Vec<Arc<str>>>> = Arc::default();
        let sink = Arc::clone(&pending);
        let mut l1 = self.l1;
        let mut loads = LoadStats::default();
        if let Some((tier, l)) = self.metrics {
            l1 = l1.stats(tier);
            loads = l;
        }
        let l1 = l1
            .wrapping(Stored::value, move |k: &Arc<str>, _: &Stored<V>, cause| {
                // Invalidations update the index themselves; replacements keep the key.
                if matches!(cause, RemovalCause::Capacity | RemovalCause::Expired) {
                    lock(&sink).push(Arc::clone(k));
                }
            })
            .build()?;
        Ok(TieredCache {
            inner: Arc::new(Inner {
                default_ttl: l1.default_ttl(),
                l1,
                l2: self.l2,
                index: Mutex::default(),
                evicted: pending,
                flights: Default::default(),
                epoch: Default::default(),
                callbacks: Default::default(),
                heat: Default::default(),
                pending: Default::default(),
                loads,
            }),
        })
    }
}
