//! `TieredCacheBuilder`: the L1 (a `MemoryTier` builder), an optional L2 (any `Tier`), and
//! where the statistics go.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use mpm_metrics::Registry;

use super::bypass::{Bypass, BypassPolicy};
use super::entry::Stored;
use super::lower::Lower;
use super::{Inner, TieredCache, lock};
use crate::Error;
use crate::memory::{DefaultHashBuilder, MemoryTier, MemoryTierBuilder};
use crate::metrics::{self, SizeGauges, Target};
use crate::stats::{L2Stats, LoadStats, RemovalCause};
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
    bypass: BypassPolicy,
    metrics: Target,
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
            bypass: BypassPolicy::default(),
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
            bypass: self.bypass,
            metrics: self.metrics,
        }
    }

    /// Adds a tier below the L1 (a [`DiskTier`](crate::DiskTier), or any [`Tier`]): reads fall
    /// through to it (promoting hits to L1), writes and invalidations reach it.
    pub fn l2(mut self, l2: impl Tier<V> + 'static) -> Self {
        self.l2 = Some(Arc::new(l2));
        self
    }

    /// When to stop calling an L2 that keeps failing, and when to try it again (default
    /// [`BypassPolicy::default`]: after 5 failures in a row, for 1 s). See the crate docs,
    /// "When the L2 fails".
    pub fn l2_bypass(mut self, policy: BypassPolicy) -> Self {
        self.bypass = policy;
        self
    }

    /// Reports the cache's metrics into `registry` under the instance `name` (see the crate
    /// docs, "Metrics"): its lookups, L1 and L2 alike, its loads, the L1's size, and what the
    /// L2 reports of itself (for a [`DiskTier`](crate::DiskTier): `mpm_cache_disk_*` under the
    /// same name). The name is claimed at [`build`](Self::build), which fails if another cache
    /// holds it.
    pub fn metrics(mut self, registry: &Registry, name: &str) -> Self {
        self.metrics = Some((registry.clone(), name.to_owned()));
        self
    }

    /// Builds the cache; fails on an invalid L1 configuration or (with
    /// [`metrics`](Self::metrics), or `.metrics` on the L1's builder) a name another cache
    /// holds in that registry.
    pub fn build(self) -> Result<TieredCache<V, S>, Error> {
        let evicted: Arc<Mutex<Vec<Arc<str>>>> = Arc::default();
        let sink = Arc::clone(&evicted);
        let mut l1 = self.l1;
        let target = self.metrics.or(l1.take_metrics());
        let mut loads = LoadStats::default();
        let mut l2_stats = L2Stats::default();
        let mut registered = None;
        if let Some((registry, name)) = &target {
            let scope = registry.scope(metrics::CACHE, name)?;
            l1 = l1.stats(metrics::tier_stats(&scope, metrics::L1)?);
            loads = metrics::load_stats(&scope)?;
            let sizes = SizeGauges::register(&scope, metrics::L1)?;
            let pending = match self.l2 {
                Some(_) => {
                    l2_stats = metrics::l2_stats(&scope)?;
                    Some((
                        metrics::pending_gauge(&scope)?,
                        metrics::bypassed_gauge(&scope)?,
                    ))
                }
                None => None,
            };
            registered = Some((scope, sizes, pending));
        }
        let l1 = l1
            .wrapping(Stored::value, move |k: &Arc<str>, _: &Stored<V>, cause| {
                // Invalidations update the index themselves; replacements keep the key.
                if matches!(cause, RemovalCause::Capacity | RemovalCause::Expired) {
                    lock(&sink).push(Arc::clone(k));
                }
            })
            .build()?;
        let bypass = Bypass::new(self.bypass, l1.clock().clone(), l2_stats.bypasses.clone());
        let l2 = self.l2.map(|t| Lower::new(t, l2_stats, bypass));
        if let (Some(l2), Some((registry, name))) = (&l2, &target) {
            l2.register_metrics(registry, name)?;
        }
        let inner = Arc::new(Inner {
            default_ttl: l1.default_ttl(),
            l1,
            l2,
            index: Mutex::default(),
            evicted,
            flights: Default::default(),
            epoch: Default::default(),
            callbacks: Default::default(),
            heat: Default::default(),
            pending: Default::default(),
            loads,
            _scope: registered.as_ref().map(|(scope, ..)| scope.clone()),
        });
        if let Some((scope, sizes, pending)) = registered {
            scope.collector(&inner, move |inner| {
                sizes.set(inner.l1.len(), inner.l1.weight());
                if let (Some((pending, bypassed)), Some(l2)) = (&pending, &inner.l2) {
                    pending.set(i64::try_from(inner.pending.len()).unwrap_or(i64::MAX));
                    bypassed.set(i64::from(l2.bypass.active()));
                }
            });
        }
        Ok(TieredCache { inner })
    }
}
