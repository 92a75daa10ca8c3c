//! [`LazyRegistry`]: named services built on first lookup, with fallback chains and cycle
//! detection.

use std::any::{Any, TypeId, type_name};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use mpm_metrics::{Registry, Unit};
use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use crate::error::{BoxError, Error};

type AnyService = Arc<dyn Any + Send + Sync>;
type SyncFactory = Box<dyn Fn(&Resolver) -> Result<AnyService, BoxError> + Send + Sync>;
type AsyncFactory =
    Box<dyn Fn(Resolver) -> BoxFuture<'static, Result<AnyService, BoxError>> + Send + Sync>;

enum Factory {
    Sync(SyncFactory),
    Async(AsyncFactory),
}

struct Implementation {
    name: String,
    factory: Factory,
}

/// The implementations of one service, tried in order until one succeeds.
///
/// The guide's "try the new location first, fall back to the old one", as a value:
///
/// ```
/// use mpm_lazy::{LazyRegistry, Service};
///
/// let registry = LazyRegistry::builder()
///     .register(
///         "deployer",
///         Service::from_fn("agent.deployment", |_| Err("module moved".into()))
///             .or_fn("agents.deployment", |_| Ok(String::from("legacy deployer"))),
///     )
///     .build()?;
/// assert_eq!(*registry.get::<String>("deployer")?, "legacy deployer");
/// let stats = registry.stats("deployer").expect("registered");
/// assert_eq!(stats.served_by.as_deref(), Some("agents.deployment"));
/// assert_eq!(stats.last_error.as_deref(), Some("module moved"));
/// # Ok::<(), mpm_lazy::Error>(())
/// ```
pub struct Service<T> {
    implementations: Vec<Implementation>,
    output: std::marker::PhantomData<fn() -> T>,
}

impl<T: Send + Sync + 'static> Service<T> {
    fn with(implementation: Implementation) -> Self {
        Self {
            implementations: vec![implementation],
            output: std::marker::PhantomData,
        }
    }

    fn sync_implementation<F>(name: &str, factory: F) -> Implementation
    where
        F: Fn(&Resolver) -> Result<T, BoxError> + Send + Sync + 'static,
    {
        Implementation {
            name: name.to_owned(),
            factory: Factory::Sync(Box::new(move |resolver| {
                factory(resolver).map(|value| Arc::new(value) as AnyService)
            })),
        }
    }

    fn async_implementation<F, Fut>(name: &str, factory: F) -> Implementation
    where
        F: Fn(Resolver) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, BoxError>> + Send + 'static,
    {
        Implementation {
            name: name.to_owned(),
            factory: Factory::Async(Box::new(move |resolver| {
                let future = factory(resolver);
                Box::pin(async move { future.await.map(|value| Arc::new(value) as AnyService) })
            })),
        }
    }

    /// A service built by the synchronous `factory`, an implementation called `implementation`.
    pub fn from_fn<F>(implementation: &str, factory: F) -> Self
    where
        F: Fn(&Resolver) -> Result<T, BoxError> + Send + Sync + 'static,
    {
        Self::with(Self::sync_implementation(implementation, factory))
    }

    /// A service built by the async `factory`, an implementation called `implementation`.
    pub fn from_async_fn<F, Fut>(implementation: &str, factory: F) -> Self
    where
        F: Fn(Resolver) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, BoxError>> + Send + 'static,
    {
        Self::with(Self::async_implementation(implementation, factory))
    }

    /// Falls back to the synchronous `factory` when every earlier implementation failed.
    #[must_use]
    pub fn or_fn<F>(mut self, implementation: &str, factory: F) -> Self
    where
        F: Fn(&Resolver) -> Result<T, BoxError> + Send + Sync + 'static,
    {
        self.implementations
            .push(Self::sync_implementation(implementation, factory));
        self
    }

    /// Falls back to the async `factory` when every earlier implementation failed.
    #[must_use]
    pub fn or_async_fn<F, Fut>(mut self, implementation: &str, factory: F) -> Self
    where
        F: Fn(Resolver) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, BoxError>> + Send + 'static,
    {
        self.implementations
            .push(Self::async_implementation(implementation, factory));
        self
    }
}

/// What a registry knows about one service (claude-mpm's `LazyService` kept the same).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ServiceStats {
    /// The service's name.
    pub name: String,
    /// Whether it is built.
    pub initialized: bool,
    /// How long the implementation that built it took.
    pub init_time: Option<Duration>,
    /// Lookups of the service, through the registry and through resolvers.
    pub accesses: u64,
    /// Implementations run, failed or not.
    pub attempts: u64,
    /// Implementations that failed.
    pub failures: u64,
    /// The message of the latest failure, if any.
    pub last_error: Option<String>,
    /// The implementation that built the value.
    pub served_by: Option<String>,
}

#[derive(Default)]
struct EntryStats {
    init_time: Option<Duration>,
    attempts: u64,
    failures: u64,
    last_error: Option<String>,
    served_by: Option<String>,
}

struct Entry {
    name: Arc<str>,
    type_id: TypeId,
    type_name: &'static str,
    implementations: Vec<Implementation>,
    value: OnceLock<AnyService>,
    accesses: AtomicU64,
    stats: Mutex<EntryStats>,
}

impl Entry {
    fn needs_async(&self) -> bool {
        self.implementations
            .iter()
            .all(|i| matches!(i.factory, Factory::Async(_)))
    }
}

/// Who waits for whom: an edge `a -> b` means the initialization of `a` waits for `b`.
#[derive(Default)]
struct Graph {
    in_progress: HashSet<Arc<str>>,
    edges: HashMap<Arc<str>, Vec<Arc<str>>>,
}

impl Graph {
    fn add_edge(&mut self, from: &Arc<str>, to: &Arc<str>) {
        self.edges
            .entry(Arc::clone(from))
            .or_default()
            .push(Arc::clone(to));
    }

    fn remove_edge(&mut self, from: &Arc<str>, to: &Arc<str>) {
        if let Some(targets) = self.edges.get_mut(from) {
            if let Some(i) = targets.iter().position(|t| t == to) {
                targets.swap_remove(i);
            }
            if targets.is_empty() {
                self.edges.remove(from);
            }
        }
    }

    /// A path of waits from `start` to `target`, if one exists (depth first).
    fn path(&self, start: &Arc<str>, target: &Arc<str>) -> Option<Vec<Arc<str>>> {
        let mut path = vec![Arc::clone(start)];
        let mut seen = HashSet::new();
        if self.dfs(start, target, &mut path, &mut seen) {
            Some(path)
        } else {
            None
        }
    }

    fn dfs(
        &self,
        node: &Arc<str>,
        target: &Arc<str>,
        path: &mut Vec<Arc<str>>,
        seen: &mut HashSet<Arc<str>>,
    ) -> bool {
        if node == target {
            return true;
        }
        if !seen.insert(Arc::clone(node)) {
            return false;
        }
        for next in self.edges.get(node).into_iter().flatten() {
            path.push(Arc::clone(next));
            if self.dfs(next, target, path, seen) {
                return true;
            }
            path.pop();
        }
        false
    }
}

/// Service names are fixed by the program, not by an attacker, so a fast hasher is safe.
type Names<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

struct Inner {
    services: Names<Entry>,
    graph: Mutex<Graph>,
    /// Wakes blocked threads when an initialization ends.
    finished: Condvar,
    /// Wakes waiting tasks when an initialization ends.
    finished_async: Notify,
    metrics: Option<Registry>,
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
    metrics: Option<Registry>,
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
            accesses: AtomicU64::new(0),
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

    /// Records every implementation attempt's duration into the histogram
    /// `mpm_lazy_service_init_seconds` of `registry`, labelled `service`, `implementation` and
    /// `outcome = ok | error`.
    #[must_use]
    pub fn metrics(mut self, registry: &Registry) -> Self {
        self.metrics = Some(registry.clone());
        self
    }

    /// The registry.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateService`] when a name was registered twice.
    pub fn build(self) -> Result<LazyRegistry, Error> {
        if let Some(service) = self.duplicate {
            return Err(Error::DuplicateService { service });
        }
        Ok(LazyRegistry {
            inner: Arc::new(Inner {
                services: self.services,
                graph: Mutex::new(Graph::default()),
                finished: Condvar::new(),
                finished_async: Notify::new(),
                metrics: self.metrics,
            }),
        })
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
            entry.accesses.fetch_add(1, Ordering::Relaxed);
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

fn entry_stats(entry: &Entry) -> ServiceStats {
    let stats = entry.stats.lock();
    ServiceStats {
        name: entry.name.to_string(),
        initialized: entry.value.get().is_some(),
        init_time: stats.init_time,
        accesses: entry.accesses.load(Ordering::Relaxed),
        attempts: stats.attempts,
        failures: stats.failures,
        last_error: stats.last_error.clone(),
        served_by: stats.served_by.clone(),
    }
}

fn downcast<T: Send + Sync + 'static>(entry: &Entry, service: AnyService) -> Result<Arc<T>, Error> {
    service.downcast::<T>().map_err(|_| mismatch::<T>(entry))
}

fn mismatch<T>(entry: &Entry) -> Error {
    Error::TypeMismatch {
        service: entry.name.to_string(),
        expected: type_name::<T>(),
        actual: entry.type_name,
    }
}

fn lookup_sync<T: Send + Sync + 'static>(
    inner: &Arc<Inner>,
    requester: Option<&Arc<str>>,
    name: &str,
) -> Result<Arc<T>, Error> {
    let entry = entry(inner, name)?;
    check_type::<T>(entry)?;
    downcast(entry, resolve_sync(inner, requester, entry)?)
}

async fn lookup_async<T: Send + Sync + 'static>(
    inner: &Arc<Inner>,
    requester: Option<&Arc<str>>,
    name: &str,
) -> Result<Arc<T>, Error> {
    let entry = entry(inner, name)?;
    check_type::<T>(entry)?;
    downcast(entry, resolve_async(inner, requester, entry).await?)
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

/// One step of waiting for a service: it is ready, this caller must build it, or wait.
enum Step<'a> {
    Ready(AnyService),
    Build(Claim<'a>),
    Wait(WaitEdge<'a>),
}

/// The right to build one service; releasing it wakes every waiter.
struct Claim<'a> {
    inner: &'a Inner,
    name: Arc<str>,
    requester: Option<Arc<str>>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut graph = self.inner.graph.lock();
        graph.in_progress.remove(&self.name);
        if let Some(requester) = &self.requester {
            graph.remove_edge(requester, &self.name);
        }
        drop(graph);
        self.inner.finished.notify_all();
        self.inner.finished_async.notify_waiters();
    }
}

/// A recorded wait of `requester` for `name`, removed when dropped.
struct WaitEdge<'a> {
    inner: &'a Inner,
    edge: Option<(Arc<str>, Arc<str>)>,
}

impl Drop for WaitEdge<'_> {
    fn drop(&mut self) {
        if let Some((from, to)) = &self.edge {
            self.inner.graph.lock().remove_edge(from, to);
        }
    }
}

/// Decides, under the graph lock, what the caller does next about `entry`.
fn step<'a>(
    inner: &'a Inner,
    graph: &mut Graph,
    requester: Option<&Arc<str>>,
    entry: &Entry,
) -> Result<Step<'a>, Error> {
    if let Some(value) = entry.value.get() {
        return Ok(Step::Ready(Arc::clone(value)));
    }
    let name = &entry.name;
    if !graph.in_progress.contains(name) {
        graph.in_progress.insert(Arc::clone(name));
        if let Some(requester) = requester {
            graph.add_edge(requester, name);
        }
        return Ok(Step::Build(Claim {
            inner,
            name: Arc::clone(name),
            requester: requester.cloned(),
        }));
    }
    let Some(requester) = requester else {
        return Ok(Step::Wait(WaitEdge { inner, edge: None }));
    };
    // `requester` would wait for `name`: a cycle if `name` already waits, transitively, for it.
    if let Some(path) = graph.path(name, requester) {
        let mut members: Vec<String> = Vec::with_capacity(path.len() + 1);
        members.push(requester.to_string());
        members.extend(path.iter().take(path.len() - 1).map(|n| n.to_string()));
        return Err(Error::Cycle {
            cycle: canonical_cycle(members),
        });
    }
    graph.add_edge(requester, name);
    Ok(Step::Wait(WaitEdge {
        inner,
        edge: Some((Arc::clone(requester), Arc::clone(name))),
    }))
}

/// The cycle through `members` (each once, in dependency order), rotated to start at the
/// smallest name and closed by repeating it, so every thread caught in one cycle reports the same
/// text.
fn canonical_cycle(mut members: Vec<String>) -> Vec<String> {
    if let Some(start) = members
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.cmp(b.1))
        .map(|(i, _)| i)
    {
        members.rotate_left(start);
    }
    if let Some(first) = members.first().cloned() {
        members.push(first);
    }
    members
}

fn resolve_sync(
    inner: &Arc<Inner>,
    requester: Option<&Arc<str>>,
    entry: &Entry,
) -> Result<AnyService, Error> {
    entry.accesses.fetch_add(1, Ordering::Relaxed);
    if let Some(value) = entry.value.get() {
        return Ok(Arc::clone(value));
    }
    if entry.needs_async() {
        return Err(Error::RequiresAsync {
            service: entry.name.to_string(),
        });
    }
    let mut graph = inner.graph.lock();
    loop {
        match step(inner, &mut graph, requester, entry)? {
            Step::Ready(value) => return Ok(value),
            Step::Build(claim) => {
                drop(graph);
                return build_sync(inner, entry, claim);
            }
            Step::Wait(mut edge) => {
                inner.finished.wait(&mut graph);
                // Remove the edge under the lock this thread holds again, then look again.
                if let Some((from, to)) = edge.edge.take() {
                    graph.remove_edge(&from, &to);
                }
            }
        }
    }
}

async fn resolve_async(
    inner: &Arc<Inner>,
    requester: Option<&Arc<str>>,
    entry: &Entry,
) -> Result<AnyService, Error> {
    entry.accesses.fetch_add(1, Ordering::Relaxed);
    if let Some(value) = entry.value.get() {
        return Ok(Arc::clone(value));
    }
    loop {
        let notified = inner.finished_async.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        let step = {
            let mut graph = inner.graph.lock();
            step(inner, &mut graph, requester, entry)?
        };
        match step {
            Step::Ready(value) => return Ok(value),
            Step::Build(claim) => return build_async(inner, entry, claim).await,
            Step::Wait(edge) => {
                notified.await;
                drop(edge);
            }
        }
    }
}

/// What one implementation attempt produced.
/// Records one implementation's attempt: on success the finished service, on failure `None`
/// with the error added to `failures` (the next implementation of the chain is tried).
fn settle(
    inner: &Inner,
    entry: &Entry,
    implementation: &Implementation,
    started: Instant,
    result: Result<AnyService, BoxError>,
    failures: &mut Vec<(String, BoxError)>,
) -> Option<AnyService> {
    record(inner, entry, &implementation.name, started, result.is_ok());
    match result {
        Ok(value) => Some(finish(entry, value)),
        Err(error) => {
            record_failure(entry, &error);
            failures.push((implementation.name.clone(), error));
            None
        }
    }
}

fn record(inner: &Inner, entry: &Entry, implementation: &str, started: Instant, ok: bool) {
    let elapsed = started.elapsed();
    if let Some(metrics) = &inner.metrics {
        let outcome = if ok { "ok" } else { "error" };
        let labels = [
            ("service", &*entry.name),
            ("implementation", implementation),
            ("outcome", outcome),
        ];
        if let Ok(histogram) =
            metrics.histogram("mpm_lazy_service_init_seconds", &labels, Unit::Seconds)
        {
            histogram.record_duration(elapsed);
        }
    }
    let mut stats = entry.stats.lock();
    stats.attempts += 1;
    if ok {
        stats.init_time = Some(elapsed);
        stats.served_by = Some(implementation.to_owned());
    } else {
        stats.failures += 1;
    }
}

fn record_failure(entry: &Entry, error: &BoxError) {
    entry.stats.lock().last_error = Some(error.to_string());
}

fn finish(entry: &Entry, value: AnyService) -> AnyService {
    // Only the claim holder sets the value, so this set cannot lose a race.
    let _ = entry.value.set(Arc::clone(&value));
    value
}

fn failed(entry: &Entry, mut failures: Vec<(String, BoxError)>) -> Error {
    if failures.len() == 1 {
        let (implementation, source) = failures.remove(0);
        // A cycle passes through unchanged, so the top-level caller sees the whole cycle.
        return match source.downcast::<Error>() {
            Ok(error) if matches!(*error, Error::Cycle { .. }) => *error,
            Ok(error) => Error::Factory {
                service: entry.name.to_string(),
                implementation,
                source: error,
            },
            Err(source) => Error::Factory {
                service: entry.name.to_string(),
                implementation,
                source,
            },
        };
    }
    Error::AllImplementationsFailed {
        service: entry.name.to_string(),
        failures,
    }
}

fn build_sync(inner: &Arc<Inner>, entry: &Entry, claim: Claim<'_>) -> Result<AnyService, Error> {
    let resolver = Resolver {
        inner: Arc::clone(inner),
        requester: Arc::clone(&entry.name),
    };
    let mut failures = Vec::new();
    for implementation in &entry.implementations {
        let Factory::Sync(factory) = &implementation.factory else {
            continue;
        };
        let started = Instant::now();
        let result = factory(&resolver);
        if let Some(value) = settle(inner, entry, implementation, started, result, &mut failures) {
            drop(claim);
            return Ok(value);
        }
    }
    drop(claim);
    Err(failed(entry, failures))
}

async fn build_async(
    inner: &Arc<Inner>,
    entry: &Entry,
    claim: Claim<'_>,
) -> Result<AnyService, Error> {
    let mut failures = Vec::new();
    for implementation in &entry.implementations {
        let resolver = Resolver {
            inner: Arc::clone(inner),
            requester: Arc::clone(&entry.name),
        };
        let started = Instant::now();
        let result = match &implementation.factory {
            Factory::Sync(factory) => factory(&resolver),
            Factory::Async(factory) => factory(resolver).await,
        };
        if let Some(value) = settle(inner, entry, implementation, started, result, &mut failures) {
            drop(claim);
            return Ok(value);
        }
    }
    drop(claim);
    Err(failed(entry, failures))
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
