//! `TieredCache`: the path a key takes: L1, then the L2 (any [`Tier`]), then one loader per key;
//! writes through both; invalidation by key, prefix, tag and pattern reaching both.

mod builder;
mod bypass;
mod entry;
mod flight;
mod heat;
mod index;
mod lower;
mod pending;

use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;

pub use builder::TieredCacheBuilder;
pub use bypass::BypassPolicy;
pub use entry::EntryOptions;
pub use flight::LoadFailure;

use crate::Error;
use crate::memory::{DefaultHashBuilder, MemoryTier};
use crate::pattern::Pattern;
use crate::stats::{LoadSnapshot, LoadStats, StatsSnapshot, TierSnapshot, TierStats};
use crate::tier::{Tier, TierEntry};
use entry::{FileStamp, Stored};
use flight::{Flights, Found, Outcome, Role};
use heat::Heat;
use index::Index;
use lower::Lower;
use pending::{Pending, Removal};

type Callback = Arc<dyn Fn(&str) + Send + Sync>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked: every critical section here
    // is a handful of collection operations.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Inner<V, S> {
    l1: MemoryTier<Arc<str>, Stored<V>, S>,
    l2: Option<Lower<V>>,
    index: Mutex<Index>,
    /// Keys the L1 evicted or expired, to drop from the index the next time it is locked.
    evicted: Arc<Mutex<Vec<Arc<str>>>>,
    flights: Flights<V>,
    /// Bumped by every invalidation, so a load that started before it is not cached after it.
    epoch: AtomicU64,
    callbacks: RwLock<Vec<Callback>>,
    default_ttl: Option<Duration>,
    /// Sampled reads, kept only with an L2 (where `flush` saves them).
    heat: Heat,
    /// Removals the L2 has not applied yet.
    pending: Pending,
    loads: LoadStats,
    /// Held while the cache lives: its claim on the registry and its collector.
    _scope: Option<mpm_metrics::Scope>,
}

/// Progress of [`TieredCache::warm`], reported after every key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WarmProgress {
    /// Keys finished (loaded, already cached, or failed).
    pub done: usize,
    /// Keys that failed to load.
    pub failed: usize,
    /// Keys in total, when the source knows it.
    pub total: Option<usize>,
}

/// A tiered cache with string keys: L1 in memory, an optional L2 below (any [`Tier`]), then the
/// loader.
///
/// Clones share the same cache.
///
/// ```
/// use mpm_cache::{EntryOptions, TieredCache};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let cache: TieredCache<String> = TieredCache::builder().build()?;
/// let v = cache
///     .get_or_load("agent_profile:engineer:42", || async {
///         Ok::<_, std::io::Error>("profile".to_owned())
///     })
///     .await?;
/// assert_eq!(v, "profile");
/// cache.insert_with("agent:42:memory", "notes".into(), EntryOptions::new().tag("agent:42"));
/// assert_eq!(cache.invalidate_pattern("agent_profile:engineer:*")?, 1);
/// assert_eq!(cache.invalidate_tag("agent:42")?, 1);
/// assert!(cache.get("agent:42:memory").is_none());
/// # Ok::<(), mpm_cache::Error>(())
/// # }).unwrap();
/// ```
pub struct TieredCache<V, S = DefaultHashBuilder> {
    inner: Arc<Inner<V, S>>,
}

impl<V, S> Clone for TieredCache<V, S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<V, S> fmt::Debug for TieredCache<V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredCache")
            .field("default_ttl", &self.inner.default_ttl)
            .field("l2", &self.inner.l2.is_some())
            .finish_non_exhaustive()
    }
}

impl<V: Clone + Send + Sync + 'static> TieredCache<V> {
    /// A builder: an L1 of 10,000 entries, no TTL, no L2.
    pub fn builder() -> TieredCacheBuilder<V> {
        TieredCacheBuilder::new()
    }
}

impl<V, S> TieredCache<V, S>
where
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// The value for `key` from L1, else from L2 (promoting it to L1). An entry whose file
    /// dependencies changed is dropped from L1 and reported as a miss. An L2 that fails is a
    /// miss.
    pub fn get(&self, key: &str) -> Option<V> {
        if let Some(v) = self.get_l1(key) {
            return Some(v);
        }
        let v = self.get_l2(key);
        self.count(if v.is_some() {
            Found::L2
        } else {
            Found::Loaded
        });
        v
    }

    /// Counts the outcome of a lookup that missed the L1's counted probe: one hit of the tier
    /// that answered, or one miss.
    fn count(&self, found: Found) {
        let inner = &*self.inner;
        match found {
            Found::L1 => inner.l1.stats().hits.inc(),
            Found::L2 => {
                if let Some(l2) = &inner.l2 {
                    l2.stats.hits.inc();
                }
            }
            Found::Loaded => inner.l1.stats().misses.inc(),
        }
    }

    /// The L1 half of [`get`](Self::get): counts an L1 hit (a miss is counted once the
    /// lookup ends) and samples heat.
    #[inline]
    fn get_l1(&self, key: &str) -> Option<V> {
        let inner = &*self.inner;
        let s = inner.l1.get_counting_hits(key)?;
        if let Some(files) = &s.files
            && !files.iter().all(FileStamp::fresh)
        {
            self.drop_stale(key);
            return None;
        }
        if inner.l2.is_some() && heat::sampled() {
            inner.heat.count(key, u64::from(heat::SAMPLE));
        }
        Some(s.value)
    }

    /// The L2 half of [`get`](Self::get): one L2 read (uncounted: the caller counts the
    /// lookup), promoted to L1 unless an invalidation ran meanwhile.
    fn get_l2(&self, key: &str) -> Option<V> {
        let inner = &*self.inner;
        let l2 = inner.l2.as_ref()?;
        let epoch = inner.epoch.load(Ordering::Acquire);
        let applied = inner.pending.applied();
        let hit = l2.get(key).ok()??;
        if inner.pending.masks(key, &hit.tags) || inner.pending.applied() != applied {
            return None;
        }
        inner.heat.count(key, 1);
        let TierEntry { value, ttl, tags } = hit;
        let key: Arc<str> = key.into();
        let mut idx = self.index();
        if epoch == inner.epoch.load(Ordering::Acquire) {
            self.store_l1(&mut idx, &key, value.clone(), ttl, tags, None, false);
        }
        Some(value)
    }

    /// Drops an entry whose file dependency changed: from the L1 and the index only. It was
    /// never written to the L2, and no load of another key is affected (the epoch stays).
    fn drop_stale(&self, key: &str) {
        let mut idx = self.index();
        idx.forget(key);
        self.inner.l1.remove(key);
    }

    /// Whether a live value for `key` is in L1.
    pub fn contains(&self, key: &str) -> bool {
        self.inner.l1.contains(key)
    }

    /// Stores `value` with the default TTL in every tier.
    pub fn insert(&self, key: &str, value: V) {
        self.insert_with(key, value, EntryOptions::new());
    }

    /// Stores `value` with `opts` in every tier. An L2 write error is counted and the L1 keeps
    /// the value; use [`try_insert_with`](Self::try_insert_with) to see it.
    pub fn insert_with(&self, key: &str, value: V, opts: EntryOptions) {
        let _ = self.try_insert_with(key, value, opts);
    }

    /// Stores `value` with `opts` in every tier; returns the L2's error, if any (the L1 is
    /// written regardless).
    pub fn try_insert_with(&self, key: &str, value: V, opts: EntryOptions) -> Result<(), Error> {
        self.put(key, value, opts, None).unwrap_or(Ok(()))
    }

    /// Writes every tier. With `since = Some(epoch)`, writes nothing if an invalidation ran
    /// after `epoch`; the decision is taken under the index lock, before any tier is written,
    /// and the lock is held until both are, so an invalidation either comes before (and the
    /// value is not stored) or after (and removes it from both). Returns `None` when nothing
    /// was written, else the L2's outcome.
    fn put(
        &self,
        key: &str,
        value: V,
        opts: EntryOptions,
        since: Option<u64>,
    ) -> Option<Result<(), Error>> {
        let inner = &*self.inner;
        let ttl = opts.ttl.unwrap_or(inner.default_ttl);
        let tags: Arc<[Arc<str>]> = opts.tags.into();
        let files: Option<Arc<[FileStamp]>> = (!opts.files.is_empty())
            .then(|| opts.files.iter().map(|p| FileStamp::take(p)).collect());
        let key: Arc<str> = key.into();
        let mut idx = self.index();
        if since.is_some_and(|e| e != inner.epoch.load(Ordering::Acquire)) {
            return None;
        }
        let l2 = match (&inner.l2, &files) {
            // Entries tied to files stay in memory: their stamps are per process.
            (Some(l2), None) => {
                // Removals the L2 still owes go first (the value written now stays masked
                // while they fail, which only costs L2 hits).
                let _ = inner.pending.retry(l2);
                let put = l2.put(&key, &value, ttl, &tags);
                if put.is_err() {
                    // The L2 may still hold an older value for the key: it stays masked until
                    // the L2 has removed it, so that value is never served.
                    let _ = inner.pending.remove(l2, Removal::Key(key.to_string()));
                }
                put
            }
            _ => Ok(()),
        };
        self.store_l1(&mut idx, &key, value, ttl, tags, files, opts.pinned);
        Some(l2)
    }

    #[allow(clippy::too_many_arguments)]
    fn store_l1(
        &self,
        idx: &mut Index,
        key: &Arc<str>,
        value: V,
        ttl: Option<Duration>,
        tags: Arc<[Arc<str>]>,
        files: Option<Arc<[FileStamp]>>,
        pinned: bool,
    ) {
        idx.record(key, &tags);
        let stored = Stored { value, files };
        if pinned {
            self.inner.l1.insert_pinned(Arc::clone(key), stored, ttl);
        } else {
            self.inner.l1.insert_with_ttl(Arc::clone(key), stored, ttl);
        }
    }

    /// Locks the index after dropping the keys the L1 let go of since the last time.
    fn index(&self) -> MutexGuard<'_, Index> {
        let mut idx = lock(&self.inner.index);
        let gone = std::mem::take(&mut *lock(&self.inner.evicted));
        for k in gone {
            if !self.inner.l1.occupies(&k) {
                idx.forget(&k);
            }
        }
        idx
    }

    /// Removes `key` from every tier; returns whether the L1 held it.
    ///
    /// An `Err` is the L2's: it could not apply the removal now. The removal still holds: the
    /// L1 no longer has the key, and the L2's entry stays masked (every L2 read checks the
    /// removals it still owes) until a later write, invalidation or [`flush`](Self::flush)
    /// applies it. See the crate docs, "When the L2 fails".
    pub fn remove(&self, key: &str) -> Result<bool, Error> {
        let held = self.inner.l1.occupies(key);
        self.invalidate(|_| vec![key.into()], Removal::Key(key.to_owned()))?;
        Ok(held)
    }

    /// Removes every entry whose key starts with `prefix`, from every tier. Costs in proportion
    /// to the entries removed (an ordered index, not a scan). Returns the L1 entries removed;
    /// an `Err` is as for [`remove`](Self::remove).
    pub fn invalidate_prefix(&self, prefix: &str) -> Result<usize, Error> {
        self.invalidate(
            |idx| idx.prefixed(prefix),
            Removal::Prefix(prefix.to_owned()),
        )
    }

    /// Removes every entry carrying `tag`, from every tier. Costs in proportion to the entries
    /// removed. Returns the L1 entries removed; an `Err` is as for [`remove`](Self::remove).
    pub fn invalidate_tag(&self, tag: &str) -> Result<usize, Error> {
        self.invalidate(|idx| idx.take_tag(tag), Removal::Tag(tag.to_owned()))
    }

    /// Removes every entry whose key matches the fnmatch `pattern` (see [`Pattern`]), from every
    /// tier. A pattern that is a literal followed by `*` costs like
    /// [`invalidate_prefix`](Self::invalidate_prefix); any other pattern scans the keys that
    /// share its literal prefix (all keys when it starts with a wildcard). An `Err` is a
    /// malformed pattern (nothing removed), or as for [`remove`](Self::remove).
    pub fn invalidate_pattern(&self, pattern: &str) -> Result<usize, Error> {
        let p = Pattern::new(pattern)?;
        if p.is_prefix() {
            return self.invalidate_prefix(p.literal_prefix());
        }
        let select = |idx: &mut Index| {
            idx.prefixed(p.literal_prefix())
                .into_iter()
                .filter(|k| p.matches(k))
                .collect()
        };
        self.invalidate(select, Removal::Pattern(p.clone()))
    }

    /// The one invalidation mechanism: bumps the epoch (so overlapping loads are not cached),
    /// takes the keys `select` picks out of the index and forgets them, removes them from L1
    /// and runs the callbacks, then has the L2 apply `removal` (recorded first, so no L2 read
    /// can see the entries meanwhile or after a failure). Returns how many keys were taken.
    fn invalidate(
        &self,
        select: impl FnOnce(&mut Index) -> Vec<Arc<str>>,
        removal: Removal,
    ) -> Result<usize, Error> {
        let inner = &*self.inner;
        inner.epoch.fetch_add(1, Ordering::AcqRel);
        let keys = {
            let mut idx = self.index();
            let keys = select(&mut idx);
            for k in &keys {
                idx.forget(k);
                inner.l1.remove(k.as_ref());
            }
            keys
        };
        let l2 = match &inner.l2 {
            Some(l2) => inner.pending.remove(l2, removal),
            None => Ok(()),
        };
        let callbacks = inner
            .callbacks
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for k in &keys {
            for cb in &callbacks {
                cb(k);
            }
        }
        l2.map(|()| keys.len())
    }

    /// Calls `f` with every key removed by `remove` or an invalidation (after removal).
    pub fn on_invalidate(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        self.inner
            .callbacks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::new(f));
    }

    /// Removes every entry from every tier; an `Err` is as for [`remove`](Self::remove).
    pub fn clear(&self) -> Result<(), Error> {
        let inner = &*self.inner;
        inner.epoch.fetch_add(1, Ordering::AcqRel);
        {
            let mut idx = self.index();
            *idx = Index::default();
            inner.l1.clear();
        }
        match &inner.l2 {
            Some(l2) => inner.pending.remove(l2, Removal::All),
            None => Ok(()),
        }
    }

    /// The value for `key`; on a miss in every tier, runs `loader` once however many tasks miss
    /// the same key at the same time, stores its value in every tier and hands it to all of them.
    ///
    /// A loader error is not cached and reaches every waiter as [`Error::Load`], which keeps
    /// the error itself ([`LoadFailure::downcast`]). If the loader panics, the waiters receive
    /// [`Error::LoadAbandoned`]; if the loading task is cancelled (its future dropped), one of
    /// the waiters runs the loader instead. A value loaded while an invalidation ran is
    /// returned but not cached.
    pub async fn get_or_load<F, Fut, E>(&self, key: &str, loader: F) -> Result<V, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: fmt::Display + Send + Sync + 'static,
    {
        self.get_or_load_with(key, EntryOptions::new(), loader)
            .await
    }

    /// [`get_or_load`](Self::get_or_load) storing the loaded value with `opts`.
    pub async fn get_or_load_with<F, Fut, E>(
        &self,
        key: &str,
        opts: EntryOptions,
        loader: F,
    ) -> Result<V, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: fmt::Display + Send + Sync + 'static,
    {
        if let Some(v) = self.get_l1(key) {
            return Ok(v);
        }
        loop {
            let mut rx = match self.inner.flights.join(key) {
                Role::Lead(leader) => return self.lead(leader, opts, loader).await,
                Role::Wait(rx) => rx,
            };
            let Ok(outcome) = rx.wait_for(Option::is_some).await else {
                continue; // The leader was cancelled: try again, perhaps as the leader.
            };
            let outcome = outcome.as_ref().map(Arc::clone);
            match outcome.as_deref() {
                Some(Outcome::Value(v, found)) => {
                    self.count(*found);
                    return Ok(v.clone());
                }
                Some(Outcome::Failed(failure)) => {
                    self.count(Found::Loaded);
                    return Err(Error::Load {
                        key: key.to_owned(),
                        message: failure.message().to_owned(),
                        failure: failure.clone(),
                    });
                }
                Some(Outcome::Panicked) => {
                    self.count(Found::Loaded);
                    return Err(Error::LoadAbandoned {
                        key: key.to_owned(),
                    });
                }
                None => continue,
            }
        }
    }

    async fn lead<F, Fut, E>(
        &self,
        leader: flight::Leader<'_, V>,
        opts: EntryOptions,
        loader: F,
    ) -> Result<V, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: fmt::Display + Send + Sync + 'static,
    {
        let inner = &*self.inner;
        let key = Arc::clone(&leader.key);
        // The epoch is read before the tiers are probed, so an invalidation after the probe
        // keeps the loaded value out of the cache.
        let epoch = inner.epoch.load(Ordering::Acquire);
        // A leader that finished just before this one registered has stored its value: one
        // uncounted look at L1, then the one L2 read.
        let found = inner
            .l1
            .peek(key.as_ref())
            .filter(|s| {
                s.files
                    .as_ref()
                    .is_none_or(|f| f.iter().all(FileStamp::fresh))
            })
            .map(|s| (s.value, Found::L1))
            .or_else(|| self.get_l2(&key).map(|v| (v, Found::L2)));
        if let Some((v, found)) = found {
            self.count(found);
            leader.send(Outcome::Value(v.clone(), found));
            return Ok(v);
        }
        self.count(Found::Loaded);
        let started = Instant::now();
        let result = loader().await;
        inner.loads.latency.record_duration(started.elapsed());
        match result {
            Ok(v) => {
                inner.loads.ok.inc();
                let _ = self.put(&key, v.clone(), opts, Some(epoch));
                leader.send(Outcome::Value(v.clone(), Found::Loaded));
                Ok(v)
            }
            Err(e) => {
                inner.loads.failed.inc();
                let failure = LoadFailure::new(e);
                leader.send(Outcome::Failed(failure.clone()));
                Err(Error::Load {
                    key: key.to_string(),
                    message: failure.message().to_owned(),
                    failure,
                })
            }
        }
    }

    /// Loads `keys` into the cache with at most `concurrency` loads at once, calling `progress`
    /// after each key. Keys already cached are not reloaded.
    pub async fn warm<I, F, Fut, E>(
        &self,
        keys: I,
        concurrency: NonZeroUsize,
        loader: F,
        mut progress: impl FnMut(WarmProgress),
    ) -> WarmProgress
    where
        I: IntoIterator<Item = String>,
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: fmt::Display + Send + Sync + 'static,
    {
        let keys = keys.into_iter();
        let (lo, hi) = keys.size_hint();
        let mut p = WarmProgress {
            total: (Some(lo) == hi).then_some(lo),
            ..WarmProgress::default()
        };
        let loader = &loader;
        let mut runs = futures::stream::iter(keys)
            .map(|k| async move {
                let key = k.clone();
                self.get_or_load(&key, move || loader(k)).await.is_ok()
            })
            .buffer_unordered(concurrency.get());
        while let Some(ok) = runs.next().await {
            p.done += 1;
            p.failed += usize::from(!ok);
            progress(p);
        }
        p
    }

    /// The cache's lookups (L1 hits, L2 hits, misses: each lookup counted once), the L1's
    /// inserts, removals and size, and the L2's errors.
    pub fn stats(&self) -> StatsSnapshot {
        let mut s = self.inner.l1.stats_snapshot();
        if let Some(l2) = &self.inner.l2 {
            s.l2_hits = l2.stats.hits.get();
            s.l2_errors = l2.stats.error_count();
        }
        s
    }

    /// The L1's statistics handles (its misses are the cache's: lookups no tier answered).
    pub fn stats_handles(&self) -> &TierStats {
        self.inner.l1.stats()
    }

    /// The statistics of the loads run by [`get_or_load`](Self::get_or_load).
    pub fn load_stats(&self) -> LoadSnapshot {
        self.inner.loads.snapshot()
    }

    /// The load statistics' handles (for the load-latency histogram).
    pub fn load_stats_handles(&self) -> &LoadStats {
        &self.inner.loads
    }

    /// Whether the L2 is bypassed now after failing (see [`BypassPolicy`]); `false` without
    /// an L2.
    pub fn l2_bypassed(&self) -> bool {
        self.inner.l2.as_ref().is_some_and(|l2| l2.bypass.active())
    }

    /// The L2's counters, if there is an L2.
    pub fn l2_stats(&self) -> Option<TierSnapshot> {
        self.inner.l2.as_ref().map(|l2| l2.stats())
    }

    /// Entries in L1 (live ones only).
    pub fn len(&self) -> usize {
        self.inner.l1.len()
    }

    /// Whether the L1 is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.l1.is_empty()
    }

    /// Drops the coldest L1 entries down to `fraction` of its capacity (see
    /// [`MemoryTier::shrink_to`]); the L2 keeps them.
    pub fn shrink_to(&self, fraction: f64) -> Result<usize, Error> {
        self.inner.l1.shrink_to(fraction)
    }

    /// Drops every entry from the L1 but the pinned ones (as [`shrink_to`](Self::shrink_to)
    /// with 0 does), and keeps a load in flight from storing its value afterwards (the value
    /// is returned to its callers, not cached, as when an invalidation runs during a load).
    /// The L2 keeps everything and is owed nothing. For a process that may have missed
    /// invalidations (a message bus that lost messages) and cannot tell which of its L1
    /// entries are stale. Returns the L1 entries dropped.
    pub fn clear_local(&self) -> usize {
        let inner = &*self.inner;
        inner.epoch.fetch_add(1, Ordering::AcqRel);
        // Under the index lock: a write that saw the old epoch has finished storing, and is
        // dropped below with the rest.
        let _idx = self.index();
        inner.l1.shrink_to(0.0).unwrap_or(0)
    }

    /// Applies the removals the L2 still owes, saves the read counts sampled since the last
    /// flush into the L2 (where [`warm_from_l2`](Self::warm_from_l2) finds them after a
    /// restart) and makes every L2 write durable. Call it before shutting down, and now and
    /// then while serving: an `Err` means some of that is not done (for removals the L2 still
    /// owes: they stay masked in this process, but a restart now would bring their entries
    /// back). Without an L2 it does nothing.
    pub fn flush(&self) -> Result<(), Error> {
        let inner = &*self.inner;
        let Some(l2) = &inner.l2 else {
            return Ok(());
        };
        inner.pending.retry(l2)?;
        let heat = inner.heat.take();
        let reads: Vec<(&str, u64)> = heat.iter().map(|(k, n)| (k.as_ref(), *n)).collect();
        l2.save_heat(&reads)?;
        l2.flush()
    }

    /// Copies up to `n` entries from L2 into L1, in the order the L2's
    /// [`warm_keys`](Tier::warm_keys) gives (for the disk tier: the keys most read before the
    /// last [`flush`](Self::flush), then the most recently written). Returns how many were
    /// loaded. Use it at start-up, before serving. Without an L2 it does nothing.
    pub fn warm_from_l2(&self, n: usize) -> Result<usize, Error> {
        let inner = &*self.inner;
        let Some(l2) = &inner.l2 else {
            return Ok(0);
        };
        let epoch = inner.epoch.load(Ordering::Acquire);
        let mut found = Vec::new();
        let candidates = l2.warm_keys(n)?;
        let mut rest = candidates
            .iter()
            .filter(|k| !inner.l1.contains(k.as_str()))
            .map(String::as_str);
        // Batched reads (one round trip each for a network tier), asking for no more than
        // are still wanted.
        while found.len() < n {
            let batch: Vec<&str> = rest.by_ref().take(n - found.len()).collect();
            if batch.is_empty() {
                break;
            }
            let applied = inner.pending.applied();
            let hits: Vec<_> = batch
                .iter()
                .zip(l2.get_many(&batch)?)
                .filter_map(|(key, hit)| hit.map(|hit| (*key, hit)))
                .filter(|(key, hit)| !inner.pending.masks(key, &hit.tags))
                .collect();
            // Compared after the masks were read (as in `get_l2`): a removal applied and
            // unrecorded while the batch was read leaves none of it known to be current.
            if inner.pending.applied() == applied {
                found.extend(hits);
            }
        }
        let mut idx = self.index();
        if epoch != inner.epoch.load(Ordering::Acquire) {
            return Ok(0);
        }
        let loaded = found.len();
        // Coldest first, so that the hottest entries are the most recently inserted in L1.
        for (key, hit) in found.into_iter().rev() {
            let key: Arc<str> = key.into();
            self.store_l1(&mut idx, &key, hit.value, hit.ttl, hit.tags, None, false);
        }
        Ok(loaded)
    }

    /// Removes expired L1 entries now; returns how many.
    pub fn purge_expired(&self) -> usize {
        self.inner.l1.purge_expired()
    }
}
