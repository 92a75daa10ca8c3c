//! [`Mpm`]: one metrics registry, handed with a name to every component it builds.

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;

use mpm_batch::{BatcherBuilder, Overflow};
use mpm_cache::{MemoryTier, MemoryTierBuilder, TieredCache, TieredCacheBuilder};
use mpm_lazy::{AsyncLazy, AsyncLazyBuilder, ConfigBuilder, Lazy, LazyBuilder, LazyConfig};
use mpm_memory_opt::{Optimizer, OptimizerBuilder, Options};
use mpm_metrics::{Budget, BudgetReport, Registry, Snapshot};
use mpm_pool::keyed::{KeyedBuilder, KeyedManager, KeyedPool};
use mpm_pool::{BreakerBuilder, CircuitBreaker, Manager, Pool};

/// The handle a service builds its parts from: it owns one [`Registry`] and gives it, with the
/// name you pass, to every component it starts a builder for, so that one scrape shows the
/// whole service.
///
/// Each method returns the component crate's own builder with `.metrics(&registry, name)`
/// already called; finish it as usual and end with `build()`, which fails if another
/// component of the same kind already holds the name in this registry (names are per kind: a
/// cache and a pool may both be called `profiles`). The first argument is always the name;
/// the others are those of the crate's own `builder(..)`, in its order.
///
/// `Mpm` is a cheap [`Clone`] (one `Arc`): clones share the registry.
///
/// ```
/// use mpm_core::Mpm;
///
/// let mpm = Mpm::default();
/// let settings = mpm.lazy("settings", || Ok::<_, std::io::Error>(42)).build()?;
/// assert_eq!(*settings.get_or_init()?, 42);
/// assert!(mpm.render_prometheus().contains("mpm_lazy_init_seconds_count{name=\"settings\",outcome=\"ok\"} 1\n"));
/// // The name is taken for lazy values in this registry.
/// assert!(mpm.lazy("settings", || Ok::<_, std::io::Error>(0)).build().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Mpm {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    registry: Registry,
}

/// Settings of an [`Mpm`]; made by [`Mpm::builder`].
#[derive(Debug, Default)]
#[must_use]
pub struct MpmBuilder {
    registry: Option<Registry>,
}

impl MpmBuilder {
    /// Reports into `registry` (shared with whoever else holds it) instead of a new one.
    pub fn registry(mut self, registry: &Registry) -> Self {
        self.registry = Some(registry.clone());
        self
    }

    /// The handle.
    pub fn build(self) -> Mpm {
        Mpm {
            inner: Arc::new(Inner {
                registry: self.registry.unwrap_or_default(),
            }),
        }
    }
}

impl Mpm {
    /// A builder: a new registry unless [`MpmBuilder::registry`] names one. `Mpm::default()`
    /// is the short way to a handle with a new registry.
    pub fn builder() -> MpmBuilder {
        MpmBuilder::default()
    }

    /// The registry every component reports into: for metrics of the service's own.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// A tiered cache of `V` called `name`: its lookups, loads, L1 and (at build) its L2 report
    /// under that name. Give it an L1 with [`TieredCacheBuilder::l1`] and an L2 with
    /// [`TieredCacheBuilder::l2`] (such as [`disk_tier`](Self::disk_tier)).
    pub fn cache<V>(&self, name: &str) -> TieredCacheBuilder<V>
    where
        V: Clone + Send + Sync + 'static,
    {
        TieredCache::builder().metrics(self.registry(), name)
    }

    /// A memory tier (an L1 alone, `MemoryTier<K, V>`) called `name`. Inside a tiered cache
    /// this is not needed: give [`cache`](Self::cache) a plain `MemoryTier::builder()`.
    pub fn memory_tier<K, V>(&self, name: &str) -> MemoryTierBuilder<K, V>
    where
        K: Eq + Hash + Clone,
        V: Clone,
    {
        MemoryTier::builder().metrics(self.registry(), name)
    }

    /// A disk tier in `dir` called `name` (feature `disk`). Below a cache of the same name it
    /// reports once, under that name.
    #[cfg(feature = "disk")]
    #[cfg_attr(docsrs, doc(cfg(feature = "disk")))]
    pub fn disk_tier(&self, name: &str, dir: impl AsRef<Path>) -> mpm_cache::DiskTierBuilder {
        mpm_cache::DiskTier::builder(dir.as_ref()).metrics(self.registry(), name)
    }

    /// A shared Redis tier of `V` in `namespace` on `redis`, called `name` (feature
    /// `redis-tier`): put it below a cache with [`TieredCacheBuilder::l2`], and give it the
    /// bus with `.bus(&bus)` so that its removals reach the other instances.
    #[cfg(feature = "redis-tier")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-tier")))]
    pub fn redis_tier<V>(
        &self,
        name: &str,
        redis: &mpm_cache_redis::Redis,
        namespace: &str,
    ) -> mpm_cache_redis::RedisTierBuilder<V> {
        mpm_cache_redis::RedisTier::builder(redis, namespace).metrics(self.registry(), name)
    }

    /// The invalidation bus of `namespace` on `redis` (channel `{namespace}:invalidations`),
    /// called `name` (feature `redis-tier`); `attach` the local caches it keeps fresh.
    #[cfg(feature = "redis-tier")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-tier")))]
    pub fn redis_bus(
        &self,
        name: &str,
        redis: &mpm_cache_redis::Redis,
        namespace: &str,
    ) -> mpm_cache_redis::RedisInvalidationBusBuilder {
        mpm_cache_redis::RedisInvalidationBus::builder(redis, namespace)
            .metrics(self.registry(), name)
    }

    /// A pool of the objects `manager` makes, called `name`.
    pub fn pool<M: Manager>(&self, name: &str, manager: M) -> mpm_pool::Builder<M> {
        Pool::builder(manager).metrics(self.registry(), name)
    }

    /// A keyed pool (objects per key) of the objects `manager` makes, called `name`.
    pub fn keyed_pool<K, M>(&self, name: &str, manager: M) -> KeyedBuilder<K, M>
    where
        K: Clone + Eq + Hash + Send + Sync + 'static,
        M: KeyedManager<K>,
    {
        KeyedPool::builder(manager).metrics(self.registry(), name)
    }

    /// A circuit breaker called `name` (give it to a pool with
    /// [`circuit_breaker`](mpm_pool::Builder::circuit_breaker), or wrap any call).
    pub fn breaker(&self, name: &str) -> BreakerBuilder {
        CircuitBreaker::builder().metrics(self.registry(), name)
    }

    /// A value `init` builds on first use, called `name`.
    pub fn lazy<T, E, F>(&self, name: &str, init: F) -> LazyBuilder<T, E, F>
    where
        F: Fn() -> Result<T, E>,
    {
        Lazy::builder(init).metrics(self.registry(), name)
    }

    /// A value the future of `init` builds on first use, called `name`.
    pub fn async_lazy<T, E, F, Fut>(&self, name: &str, init: F) -> AsyncLazyBuilder<T, E, F>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        AsyncLazy::builder(init).metrics(self.registry(), name)
    }

    /// A registry of named services built on first lookup, called `name`.
    pub fn lazy_registry(&self, name: &str) -> mpm_lazy::RegistryBuilder {
        mpm_lazy::LazyRegistry::builder().metrics(self.registry(), name)
    }

    /// The configuration file at `path`, parsed section by section on first use, called
    /// `name`.
    pub fn config(&self, name: &str, path: impl AsRef<Path>) -> ConfigBuilder {
        LazyConfig::builder(path).metrics(self.registry(), name)
    }

    /// A memory-file optimizer with `options`, called `name`.
    pub fn optimizer(&self, name: &str, options: Options) -> OptimizerBuilder {
        Optimizer::builder(options).metrics(self.registry(), name)
    }

    /// A batcher whose queue holds at most `capacity` items, with the `overflow` policy,
    /// called `name`; its `build(consumer)` starts it on the current Tokio runtime.
    pub fn batcher<K, T>(
        &self,
        name: &str,
        capacity: NonZeroUsize,
        overflow: Overflow,
    ) -> BatcherBuilder<K, T>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        T: Send + Sync + 'static,
    {
        mpm_batch::Batcher::builder(capacity, overflow).metrics(self.registry(), name)
    }

    /// Every metric now, collectors run first (so gauges such as cache entries and pool sizes
    /// are current).
    pub fn snapshot(&self) -> Snapshot {
        self.registry().snapshot()
    }

    /// The Prometheus text exposition of every metric, collectors run first.
    pub fn render_prometheus(&self) -> String {
        self.registry().render_prometheus()
    }

    /// Checks `budgets` against a [`snapshot`](Self::snapshot) taken now.
    pub fn check_budgets(&self, budgets: &[Budget]) -> BudgetReport {
        mpm_metrics::check_budgets(&self.snapshot(), budgets)
    }

    /// Serves `/metrics`, `/metrics.json` and `/health` on `addr` with the default limits
    /// (feature `http`); drop or [`shutdown`](mpm_metrics::http::MetricsServer::shutdown) the
    /// server to stop. [`metrics_server`](Self::metrics_server) sets a bearer token and the
    /// limits.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub async fn serve_metrics(
        &self,
        addr: std::net::SocketAddr,
    ) -> Result<mpm_metrics::http::MetricsServer, mpm_metrics::http::ServeError> {
        mpm_metrics::http::serve(self.registry(), addr).await
    }

    /// The settings of an HTTP endpoint for the registry (feature `http`): address (loopback
    /// by default), bearer token, connection and request limits; `build().await` starts it.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn metrics_server(&self) -> mpm_metrics::http::MetricsServerBuilder {
        mpm_metrics::http::MetricsServer::builder(self.registry())
    }
}
