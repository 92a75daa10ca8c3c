//! [`LazyRegistry`]: named services built on first lookup, with fallback chains and cycle
//! detection.
//!
//! - [`service`]: what a service is ([`Service`], its chain of factories);
//! - [`stats`]: what is recorded per service ([`ServiceStats`]);
//! - [`graph`]: who builds and who waits, for cycle detection;
//! - [`resolve`]: the sync and async lookups that claim, wait and build.

mod graph;
mod resolve;
mod service;
mod stats;

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, OnceLock};

use futures::StreamExt;
use mpm_metrics::{Counter, Registry};
use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use crate::error::{BoxError, Error};
use graph::Graph;
use resolve::{lookup_async, lookup_sync, resolve_async};
pub use service::Service;
pub use stats::ServiceStats;
use stats::{Entry, EntryStats, RegistryMetrics, entry_stats};

/// A built service, type-erased.
type AnyService = Arc<dyn Any + Send + Sync>;

/// Service names are fixed by the program, not by an attacker, so a fast hasher is safe.
type Names<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

struct Inner {
    services: Names<Entry>,
    graph: Mutex<Graph>,
    /// Wakes blocked threads when an initialization ends.
    finished: Condvar,
    /// Wakes waiting tasks when an initialization ends.
    finished_async: Notify,
    metrics: Option<RegistryMetrics>,
}

/// Named services built on first lookup and cached: the guide's lazy service lookup.
///
/// - Each name has a [`Service`]: one implementation or a fallback chain, sync or async. The
///   first lookup runs it; later lookups return the cached `Arc` without a lock.
/// - A factory resolves the services it needs through its [`Resolver`]. A dependency cycle
///   (`a` needs `b` needs `a`) is an [`Error::Cycle`] naming the whole cycle, never a deadlock,
///   also when two threads enter the cycle from different ends.
/// - A failed initialization is not cached: the next lookup tries again.
/// - [`stats`](LazyRegistry::stats) tells, per service, whether it is built, how long it took,
///   how often it was looked up, the last error and the implementation that served.
/// - [`initialize_all`](LazyRegistry::initialize_all) warms every service up with bounded
///   concurrency.
///
/// Cloning is cheap; clones share the services.
///
/// ```
/// use std::sync::Arc;
/// use mpm_lazy::{LazyRegistry, Resolver};
///
/// struct Db(String);
/// struct Profiles { db: Arc<Db> }
///
/// let registry = LazyRegistry::builder()
///     .register_fn("db", |_: &Resolver| Ok(Db("postgres://localhost/agents".into())))
///     .register_fn("profiles", |r: &Resolver| Ok(Profiles { db: r.get::<Db>("db")? }))
///     .build()?;
///
/// let profiles = registry.get::<Profiles>("profiles")?; // builds `db`, then `profiles`
/// assert_eq!(profiles.db.0, "postgres://localhost/agents");
/// assert!(registry.stats("db").unwrap().initialized);
/// # Ok::<(), mpm_lazy::Error>(())
/// ```
#[derive(Clone)]
pub struct LazyRegistry {
    inner: Arc<Inner>,
}

/// Builds a [`LazyRegistry`]; the set of names is fixed by [`build`](RegistryBuilder::build),
/// which is what lets lookups go without a lock.
#[derive(Default)]
pub struct RegistryBuilder {
    services: Names<Entry>,
    duplicate: Option<String>,
    metrics: Option<(Registry, String)>,
}

impl RegistryBuilder {
    /// Registers `service` under `name`.
    #[must_use]
    pub fn register<T: Send + Sync + 'static>(mut self, name: &str, service: Service<T>) -> Self {
        if self.services.contains_key(name) {
            self.duplicate.get_or_insert_with(|| name.to_owned());
            return self;
        }
        let entry = Entry {
            name: Arc::from(name),
            type_id: TypeId::of::<T>(),
            type_name: type_name::<T>(),
            implementations: service.implementations,
            value: OnceLock::new(),
            accesses: Counter::new(),
            stats: Mutex::new(EntryStats::default()),
        };
        self.services.insert(Box::from(name), entry);
        self
    }

    /// Registers a service with one synchronous factory.
    #[must_use]
    pub fn register_fn<T, F>(self, name: &str, factory: F) -> Self
    where
        T: Send + Sync + 'static,
        F: Fn(&Resolver) -> Result<T, BoxError> + Send + Sync + 'static,
    {
        self.register(name, Service::from_fn(name, factory))
    }

    /// Registers a service with one async factory.
    #[must_use]
    pub fn register_async_fn<T, F, Fut>(self, name: &str, factory: F) -> Self
    where
        T: Send + Sync + 'static,
        F: Fn(Resolver) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, BoxError>> + Send + 'static,
    {
        self.register(name, Service::from_async_fn(name, factory))
    }

    /// Reports into `registry` under the instance name `name` (the label `name`): the metrics
    /// listed in the [crate docs](crate#metrics). The name is claimed at
    /// [`build`](RegistryBuilder::build).
    #[must_use]
    pub fn metrics(mut self, registry: &Registry, name: &str) -> Self {
        self.metrics = Some((registry.clone(), name.to_owned()));
        self
    }

    /// The registry.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateService`] when a name was registered twice; [`Error::Metrics`] when
    /// the metrics registry refuses the metrics (another lazy registry of the same name reports
    /// into it).
    pub fn build(self) -> Result<LazyRegistry, Error> {
        if let Some(service) = self.duplicate {
            return Err(Error::DuplicateService { service });
        }
        let metrics = match self.metrics {
            Some((registry, name)) => Some(RegistryMetrics::new(
                &registry,
                &name,
                self.services.values(),
            )?),
            None => None,
        };
        let inner = Arc::new(Inner {
            services: self.services,
            graph: Mutex::new(Graph::default()),
            finished: Condvar::new(),
            finished_async: Notify::new(),
            metrics,
        });
        if let Some(metrics) = &inner.metrics {
            metrics.collect_from(&inner);
        }
        Ok(LazyRegistry { inner })
    }
}

/// Resolves the services a factory depends on; given to every factory.
///
/// It knows which service is being built, so the registry can see who waits for whom and report
/// a cycle instead of deadlocking.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
    requester: Arc<str>,
}

impl Resolver {
    /// The service whose factory holds this resolver.
    pub fn service(&self) -> &str {
        &self.requester
    }

    /// The service `name`, built now (by synchronous factories) if needed.
    ///
    /// This blocks the thread while another thread or task builds `name`; inside an async
    /// factory use [`get_async`](Resolver::get_async), which waits without blocking.
    ///
    /// # Errors
    ///
    /// As [`LazyRegistry::get`], and [`Error::Cycle`] when `name` (transitively) waits for the
    /// service being built.
    pub fn get<T: Send + Sync + 'static>(&self, name: &str) -> Result<Arc<T>, Error> {
        lookup_sync(&self.inner, Some(&self.requester), name)
    }

    /// The service `name`, built now (by sync or async factories) if needed.
    ///
    /// # Errors
    ///
    /// As [`Resolver::get`].
    pub async fn get_async<T: Send + Sync + 'static>(&self, name: &str) -> Result<Arc<T>, Error> {
        lookup_async(&self.inner, Some(&self.requester), name).await
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("service", &self.requester)
            .finish()
    }
}

/// The outcome of [`LazyRegistry::initialize_all`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct WarmUp {
    /// Services built (or already built).
    pub initialized: Vec<String>,
    /// Services that failed, with why.
    pub failed: Vec<(String, Error)>,
}

impl LazyRegistry {
    /// A builder.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// The service `name` as a `T`, built now by its synchronous factories if needed (async
    /// implementations in its fallback chain are skipped; [`get_async`](LazyRegistry::get_async)
    /// runs them).
    ///
    /// Once built, a lookup takes no lock: a hash lookup, a counter increment and an `Arc` clone.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownService`], [`Error::TypeMismatch`], [`Error::RequiresAsync`] (use
    /// [`get_async`](LazyRegistry::get_async)), [`Error::Cycle`], [`Error::Factory`] or
    /// [`Error::AllImplementationsFailed`].
    #[inline]
    pub fn get<T: Send + Sync + 'static>(&self, name: &str) -> Result<Arc<T>, Error> {
        if let Some(entry) = self.inner.services.get(name)
            && let Some(value) = entry.value.get()
        {
            entry.accesses.inc();
            return downcast(entry, Arc::clone(value));
        }
        lookup_sync(&self.inner, None, name)
    }

    /// The service `name` as a `T`, built now by its sync or async factories if needed.
    ///
    /// Cancel safe: dropping the future while it builds the service lets the next caller build it.
    ///
    /// # Errors
    ///
    /// As [`get`](LazyRegistry::get), without [`Error::RequiresAsync`].
    pub async fn get_async<T: Send + Sync + 'static>(&self, name: &str) -> Result<Arc<T>, Error> {
        lookup_async(&self.inner, None, name).await
    }

    /// Whether `name` is built; never builds it.
    pub fn is_initialized(&self, name: &str) -> bool {
        self.inner
            .services
            .get(name)
            .is_some_and(|entry| entry.value.get().is_some())
    }

    /// The registered names, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.services.keys().map(|name| &**name)
    }

    /// What the registry knows about `name`, or `None` if it is not registered.
    pub fn stats(&self, name: &str) -> Option<ServiceStats> {
        self.inner.services.get(name).map(entry_stats)
    }

    /// [`stats`](LazyRegistry::stats) of every service, sorted by name.
    pub fn all_stats(&self) -> Vec<ServiceStats> {
        let mut all: Vec<_> = self.inner.services.values().map(entry_stats).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Builds every service, at most `concurrency` at a time (eager warm-up). Sync factories run
    /// on the calling task; async ones interleave. Dependencies are resolved as usual, so a
    /// service shared by several others is built once.
    pub async fn initialize_all(&self, concurrency: NonZeroUsize) -> WarmUp {
        let mut names: Vec<&str> = self.names().collect();
        names.sort_unstable();
        let results: Vec<(String, Result<AnyService, Error>)> = futures::stream::iter(names)
            .map(|name| async move {
                let result = match entry(&self.inner, name) {
                    Ok(entry) => resolve_async(&self.inner, None, entry).await,
                    Err(error) => Err(error),
                };
                (name.to_owned(), result)
            })
            .buffer_unordered(concurrency.get())
            .collect()
            .await;
        let mut warm_up = WarmUp::default();
        for (name, result) in results {
            match result {
                Ok(_) => warm_up.initialized.push(name),
                Err(error) => warm_up.failed.push((name, error)),
            }
        }
        warm_up.initialized.sort_unstable();
        warm_up.failed.sort_by(|a, b| a.0.cmp(&b.0));
        warm_up
    }
}

impl fmt::Debug for LazyRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyRegistry")
            .field("services", &self.inner.services.len())
            .finish_non_exhaustive()
    }
}

#[inline]
fn downcast<T: Send + Sync + 'static>(entry: &Entry, service: AnyService) -> Result<Arc<T>, Error> {
    match service.downcast::<T>() {
        Ok(service) => Ok(service),
        Err(_) => Err(mismatch::<T>(entry)),
    }
}

#[cold]
#[inline(never)]
fn mismatch<T>(entry: &Entry) -> Error {
    Error::TypeMismatch {
        service: entry.name.to_string(),
        expected: type_name::<T>(),
        actual: entry.type_name,
    }
}

fn entry<'a>(inner: &'a Inner, name: &str) -> Result<&'a Entry, Error> {
    inner
        .services
        .get(name)
        .ok_or_else(|| Error::UnknownService {
            service: name.to_owned(),
        })
}

fn check_type<T: 'static>(entry: &Entry) -> Result<(), Error> {
    if entry.type_id == TypeId::of::<T>() {
        Ok(())
    } else {
        Err(mismatch::<T>(entry))
    }
}

impl LazyRegistry {
    /// Checks that `name` exists and holds a `T`, without building it.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownService`] or [`Error::TypeMismatch`].
    pub fn check<T: 'static>(&self, name: &str) -> Result<(), Error> {
        check_type::<T>(entry(&self.inner, name)?)
    }
}
