//! `TieredCache`: L1 (and optionally L2), single-flight loading, invalidation by key, prefix,
//! tag and pattern, file dependencies, warming and statistics.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use mpm_metrics::Registry;
use tokio::sync::watch;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::disk::DiskTier;
#[cfg(doc)]
use crate::memory::{DEFAULT_GHOST_ALLOCATION, DEFAULT_HOT_ALLOCATION};
use crate::memory::{DefaultHashBuilder, MemoryTier};
use crate::pattern::Pattern;
use crate::second::SecondTier;
use crate::stats::{RemovalCause, StatsSnapshot, TierStats};
use crate::{Clock, Error};

/// What the L1 holds for a key: the value and the files it depends on (tags live in the index).
#[derive(Clone)]
pub(crate) struct Stored<V> {
    value: V,
    files: Option<Arc<[FileStamp]>>,
}

/// The modification time and size of a file when an entry that depends on it was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileStamp {
    path: PathBuf,
    /// `None` when the file did not exist.
    seen: Option<(Option<SystemTime>, u64)>,
}

impl FileStamp {
    fn take(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            seen: Self::observe(path),
        }
    }

    fn observe(path: &Path) -> Option<(Option<SystemTime>, u64)> {
        let m = std::fs::metadata(path).ok()?;
        Some((m.modified().ok(), m.len()))
    }

    fn fresh(&self) -> bool {
        self.seen.is_some() && Self::observe(&self.path) == self.seen
    }
}

/// How to store one entry: its TTL, tags and file dependencies.
///
/// ```
/// use mpm_cache::EntryOptions;
/// use std::time::Duration;
///
/// let opts = EntryOptions::new()
///     .ttl(Some(Duration::from_secs(60)))
///     .tag("agent:42")
///     .depends_on("/etc/hostname");
/// # let _ = opts;
/// ```
#[derive(Clone, Debug, Default)]
pub struct EntryOptions {
    ttl: Option<Option<Duration>>,
    tags: Vec<Arc<str>>,
    files: Vec<PathBuf>,
    pinned: bool,
}

impl EntryOptions {
    /// The cache's default TTL, no tags, no file dependency.
    pub fn new() -> Self {
        Self::default()
    }

    /// This entry's TTL: `Some(d)`, or `None` for never (not the default).
    pub fn ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Adds a tag; [`TieredCache::invalidate_tag`] removes every entry carrying it.
    pub fn tag(mut self, tag: impl Into<Arc<str>>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Pins the entry in L1: capacity eviction and `shrink_to` never remove it (TTL and
    /// invalidation still do). Pinned entries count toward the L1's bounds.
    pub fn pinned(mut self) -> Self {
        self.pinned = true;
        self
    }

    /// Makes the entry stale once `path`'s modification time or size changes or the file
    /// disappears. The file is checked (one `stat`) on every lookup of this entry. A file that
    /// does not exist when the entry is stored makes the entry stale at once.
    pub fn depends_on(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.push(path.into());
        self
    }
}

/// Keys by order (for prefixes and patterns) and by tag, so invalidation touches only the
/// entries it removes. It may hold keys the L1 no longer has (they are dropped lazily), never
/// the reverse.
#[derive(Default)]
struct Index {
    keys: BTreeSet<Arc<str>>,
    tags: HashMap<Arc<str>, HashSet<Arc<str>>>,
    key_tags: HashMap<Arc<str>, Arc<[Arc<str>]>>,
}

impl Index {
    fn forget(&mut self, key: &str) {
        self.keys.remove(key);
        if let Some(tags) = self.key_tags.remove(key) {
            for t in tags.iter() {
                if let Some(set) = self.tags.get_mut(t) {
                    set.remove(key);
                    if set.is_empty() {
                        self.tags.remove(t);
                    }
                }
            }
        }
    }

    fn prefixed(&self, prefix: &str) -> Vec<Arc<str>> {
        self.keys
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

enum Outcome<V> {
    Value(V),
    Failed(String),
    Panicked,
}

type FlightRx<V> = watch::Receiver<Option<Arc<Outcome<V>>>>;
type Callback = Arc<dyn Fn(&str) + Send + Sync>;
type WeighStr<V> = Arc<dyn Fn(&str, &V) -> u64 + Send + Sync>;

struct Inner<V, S> {
    l1: MemoryTier<Arc<str>, Stored<V>, S>,
    l2: Option<Arc<dyn SecondTier<V>>>,
    index: Mutex<Index>,
    /// Keys the L1 evicted or expired, to drop from the index the next time it is locked.
    pending: Arc<Mutex<Vec<Arc<str>>>>,
    inflight: Mutex<HashMap<Arc<str>, FlightRx<V>>>,
    /// Bumped by every invalidation, so a load that started before it is not cached after it.
    epoch: AtomicU64,
    callbacks: RwLock<Vec<Callback>>,
    default_ttl: Option<Duration>,
    /// Reads sampled since the last [`TieredCache::flush`] (one L1 hit in [`HEAT_SAMPLE`], every
    /// L2 hit), for warming the hottest keys first after a restart. Only kept with an L2.
    heat: Mutex<HashMap<Arc<str>, u64>>,
}

/// One L1 hit in this many is counted toward a key's heat.
const HEAT_SAMPLE: u32 = 64;
/// The most keys whose heat is tracked in memory between flushes; past it, counts are halved
/// and the keys left at zero dropped.
const HEAT_KEYS: usize = 16_384;

/// Whether this read is one of the sampled ones: a per-thread xorshift draw, so no shared write,
/// and random, so that a periodic access pattern cannot dodge the sample.
fn sampled() -> bool {
    use std::sync::atomic::AtomicU64;
    static SEEDS: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new(
            SEEDS.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) | 1,
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x % u64::from(HEAT_SAMPLE) == 0
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked: every critical section here
    // is a handful of collection operations.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Builds a [`TieredCache`].
pub struct TieredCacheBuilder<V, S = DefaultHashBuilder> {
    max_entries: Option<NonZeroUsize>,
    max_weight: Option<u64>,
    weigh: Option<WeighStr<V>>,
    default_ttl: Option<Duration>,
    hot_allocation: Option<f64>,
    ghost_allocation: Option<f64>,
    clock: Clock,
    stats: TierStats,
    l2: Option<Arc<dyn SecondTier<V>>>,
    hasher: S,
}

impl<V, S> fmt::Debug for TieredCacheBuilder<V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredCacheBuilder")
            .field("max_entries", &self.max_entries)
            .field("default_ttl", &self.default_ttl)
            .finish_non_exhaustive()
    }
}

impl<V, S> TieredCacheBuilder<V, S>
where
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Bounds the L1's entry count (default 10,000).
    pub fn max_entries(mut self, n: NonZeroUsize) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// Bounds the L1's weight, as measured by `weigh` (for example bytes).
    pub fn max_weight(
        mut self,
        weight: u64,
        weigh: impl Fn(&str, &V) -> u64 + Send + Sync + 'static,
    ) -> Self {
        self.max_weight = Some(weight);
        self.weigh = Some(Arc::new(weigh));
        self
    }

    /// The TTL of entries stored without one; `None` (the default) means never.
    pub fn default_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// quick_cache's `hot_allocation` for the L1 (default [`DEFAULT_HOT_ALLOCATION`]).
    pub fn hot_allocation(mut self, fraction: f64) -> Self {
        self.hot_allocation = Some(fraction);
        self
    }

    /// quick_cache's `ghost_allocation` for the L1 (default [`DEFAULT_GHOST_ALLOCATION`]).
    pub fn ghost_allocation(mut self, fraction: f64) -> Self {
        self.ghost_allocation = Some(fraction);
        self
    }

    /// The L1's key hasher (quick_cache's fast hasher, randomly seeded, by default). A fixed
    /// seed makes eviction decisions, and so hit ratios, repeatable from run to run.
    pub fn hasher<S2>(self, hasher: S2) -> TieredCacheBuilder<V, S2> {
        TieredCacheBuilder {
            max_entries: self.max_entries,
            max_weight: self.max_weight,
            weigh: self.weigh,
            default_ttl: self.default_ttl,
            hot_allocation: self.hot_allocation,
            ghost_allocation: self.ghost_allocation,
            clock: self.clock,
            stats: self.stats,
            l2: self.l2,
            hasher,
        }
    }

    /// The clock TTLs are measured on.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Records the statistics into `registry` under `cache=<name>`.
    pub fn metrics(mut self, registry: &Registry, name: &str) -> Result<Self, Error> {
        self.stats = TierStats::register(registry, name, "l1")?;
        Ok(self)
    }

    /// Adds a durable L2 below the memory tier: reads fall through to it (promoting hits to
    /// L1), writes and invalidations go to both.
    pub fn disk(mut self, l2: DiskTier<V>) -> Self
    where
        V: Serialize + DeserializeOwned,
    {
        self.l2 = Some(Arc::new(l2));
        self
    }

    /// Builds the cache.
    pub fn build(self) -> Result<TieredCache<V, S>, Error> {
        let pending: Arc<Mutex<Vec<Arc<str>>>> = Arc::default();
        let sink = Arc::clone(&pending);
        let mut l1 = MemoryTier::builder()
            .default_ttl(self.default_ttl)
            .clock(self.clock)
            .stats(self.stats)
            .eviction_listener(move |k: &Arc<str>, _: &Stored<V>, cause| {
                // Invalidations update the index themselves; replacements keep the key.
                if matches!(cause, RemovalCause::Capacity | RemovalCause::Expired) {
                    lock(&sink).push(Arc::clone(k));
                }
            });
        if let Some(n) = self.max_entries {
            l1 = l1.max_entries(n);
        }
        if let (Some(w), Some(f)) = (self.max_weight, self.weigh) {
            l1 = l1
                .max_weight(w)
                .weigher(move |k: &Arc<str>, v: &Stored<V>| f(k, &v.value));
        }
        if let Some(h) = self.hot_allocation {
            l1 = l1.hot_allocation(h);
        }
        if let Some(g) = self.ghost_allocation {
            l1 = l1.ghost_allocation(g);
        }
        Ok(TieredCache {
            inner: Arc::new(Inner {
                l1: l1.hasher(self.hasher).build()?,
                l2: self.l2,
                index: Mutex::default(),
                pending,
                inflight: Mutex::default(),
                epoch: AtomicU64::new(0),
                callbacks: RwLock::default(),
                default_ttl: self.default_ttl,
                heat: Mutex::default(),
            }),
        })
    }
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

/// A tiered cache with string keys: L1 in memory, an optional durable L2, then the loader.
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
/// assert_eq!(cache.invalidate_tag("agent:42"), 1);
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

/// Removes the in-flight record of a load when the leader finishes, fails, panics or is dropped.
struct FlightGuard<'a, V, S> {
    inner: &'a Inner<V, S>,
    key: Arc<str>,
    tx: watch::Sender<Option<Arc<Outcome<V>>>>,
}

impl<V, S> Drop for FlightGuard<'_, V, S> {
    fn drop(&mut self) {
        if self.tx.borrow().is_none() && std::thread::panicking() {
            self.tx.send_replace(Some(Arc::new(Outcome::Panicked)));
        }
        let mut m = lock(&self.inner.inflight);
        if m.get(&self.key)
            .is_some_and(|rx| rx.same_channel(&self.tx.subscribe()))
        {
            m.remove(&self.key);
        }
        // Dropping `tx` without a value (cancellation) wakes every waiter, which then retries.
    }
}

impl<V: Clone + Send + Sync + 'static> TieredCache<V> {
    /// A builder: 10,000 L1 entries, no TTL, no L2.
    pub fn builder() -> TieredCacheBuilder<V> {
        TieredCacheBuilder {
            max_entries: None,
            max_weight: None,
            weigh: None,
            default_ttl: None,
            hot_allocation: None,
            ghost_allocation: None,
            clock: Clock::default(),
            stats: TierStats::default(),
            l2: None,
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl<V, S> TieredCache<V, S>
where
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// The value for `key` from L1, else from L2 (promoting it to L1). Entries whose file
    /// dependencies changed are removed and reported as a miss.
    pub fn get(&self, key: &str) -> Option<V> {
        let inner = &*self.inner;
        if let Some(s) = inner.l1.get(key) {
            if let Some(files) = &s.files
                && !files.iter().all(FileStamp::fresh)
            {
                self.remove(key);
                return None;
            }
            if inner.l2.is_some() && sampled() {
                self.heat(key, u64::from(HEAT_SAMPLE));
            }
            return Some(s.value);
        }
        let l2 = inner.l2.as_ref()?;
        let epoch = inner.epoch.load(Ordering::Acquire);
        let hit = l2.get(key).ok()??;
        self.heat(key, 1);
        let key: Arc<str> = key.into();
        self.store_l1(
            &key,
            hit.value.clone(),
            hit.ttl,
            hit.tags,
            (None, false),
            Some(epoch),
        );
        Some(hit.value)
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
        self.put(key, value, opts, None)
    }

    /// Writes every tier. With `since = Some(epoch)`, stores nothing if an invalidation ran
    /// after `epoch` (and takes back the L2 write).
    fn put(
        &self,
        key: &str,
        value: V,
        opts: EntryOptions,
        since: Option<u64>,
    ) -> Result<(), Error> {
        let ttl = opts.ttl.unwrap_or(self.inner.default_ttl);
        let tags: Arc<[Arc<str>]> = opts.tags.into();
        let files = (!opts.files.is_empty())
            .then(|| opts.files.iter().map(|p| FileStamp::take(p)).collect());
        let key: Arc<str> = key.into();
        let l2 = match (&self.inner.l2, &files) {
            // Entries tied to files stay in memory: their stamps are per process.
            (Some(l2), None) => Some((l2, l2.put(&key, &value, ttl, &tags))),
            _ => None,
        };
        if !self.store_l1(&key, value, ttl, tags, (files, opts.pinned), since)
            && let Some((l2, Ok(()))) = &l2
        {
            let _ = l2.remove(&key);
        }
        l2.map_or(Ok(()), |(_, r)| r)
    }

    fn store_l1(
        &self,
        key: &Arc<str>,
        value: V,
        ttl: Option<Duration>,
        tags: Arc<[Arc<str>]>,
        (files, pinned): (Option<Arc<[FileStamp]>>, bool),
        since: Option<u64>,
    ) -> bool {
        let inner = &*self.inner;
        let mut idx = self.index();
        // Invalidations bump the epoch before they take the index lock, so checking it under the
        // lock means any invalidation either saw this entry in the index or ran before it.
        if since.is_some_and(|e| e != inner.epoch.load(Ordering::Acquire)) {
            return false;
        }
        if !tags.is_empty() || idx.key_tags.contains_key(key) {
            idx.forget(key);
            for t in tags.iter() {
                idx.tags
                    .entry(Arc::clone(t))
                    .or_default()
                    .insert(Arc::clone(key));
            }
            if !tags.is_empty() {
                idx.key_tags.insert(Arc::clone(key), Arc::clone(&tags));
            }
        }
        idx.keys.insert(Arc::clone(key));
        let stored = Stored { value, files };
        if pinned {
            inner.l1.insert_pinned(Arc::clone(key), stored, ttl);
        } else {
            inner.l1.insert_with_ttl(Arc::clone(key), stored, ttl);
        }
        drop(idx);
        true
    }

    /// Locks the index after dropping the keys the L1 let go of since the last time.
    fn index(&self) -> MutexGuard<'_, Index> {
        let mut idx = lock(&self.inner.index);
        let gone = std::mem::take(&mut *lock(&self.inner.pending));
        for k in gone {
            if !self.inner.l1.occupies(&k) {
                idx.forget(&k);
            }
        }
        idx
    }

    fn invalidated(&self, keys: &[Arc<str>]) {
        let callbacks = self
            .inner
            .callbacks
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for k in keys {
            self.inner.l1.remove(k.as_ref());
            for cb in &callbacks {
                cb(k);
            }
        }
    }

    /// Removes `key` from every tier; returns whether the L1 held it.
    pub fn remove(&self, key: &str) -> bool {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        let held = self.inner.l1.occupies(key);
        self.index().forget(key);
        if let Some(l2) = &self.inner.l2 {
            let _ = l2.remove(key);
        }
        self.invalidated(&[key.into()]);
        held
    }

    /// Removes every entry whose key starts with `prefix`, from every tier. Costs in proportion
    /// to the entries removed (an ordered index, not a scan). Returns the L1 entries removed.
    pub fn invalidate_prefix(&self, prefix: &str) -> usize {
        self.invalidate_selected(
            |idx| idx.prefixed(prefix),
            |l2| {
                let _ = l2.remove_prefix(prefix);
            },
        )
    }

    /// Removes every entry carrying `tag`, from every tier. Costs in proportion to the entries
    /// removed. Returns the L1 entries removed.
    pub fn invalidate_tag(&self, tag: &str) -> usize {
        self.invalidate_selected(
            |idx| {
                idx.tags
                    .remove(tag)
                    .map(|s| s.into_iter().collect())
                    .unwrap_or_default()
            },
            |l2| {
                let _ = l2.remove_tag(tag);
            },
        )
    }

    /// Removes every entry whose key matches the fnmatch `pattern` (see [`Pattern`]), from every
    /// tier. A pattern that is a literal followed by `*` costs like
    /// [`invalidate_prefix`](Self::invalidate_prefix); any other pattern scans the keys that
    /// share its literal prefix (all keys when it starts with a wildcard).
    pub fn invalidate_pattern(&self, pattern: &str) -> Result<usize, Error> {
        let p = Pattern::new(pattern)?;
        if p.is_prefix() {
            return Ok(self.invalidate_prefix(p.literal_prefix()));
        }
        Ok(self.invalidate_selected(
            |idx| {
                idx.prefixed(p.literal_prefix())
                    .into_iter()
                    .filter(|k| p.matches(k))
                    .collect()
            },
            |l2| {
                let _ = l2.remove_matching(&p);
            },
        ))
    }

    /// The one invalidation mechanism behind prefix, tag and pattern invalidation: bumps the
    /// epoch (so overlapping loads are not cached), takes the keys `select` picks out of the
    /// index and forgets them, lets `remove_l2` drop the same entries from L2, then removes
    /// them from L1 and runs the callbacks. Returns how many keys were taken.
    fn invalidate_selected(
        &self,
        select: impl FnOnce(&mut Index) -> Vec<Arc<str>>,
        remove_l2: impl FnOnce(&dyn SecondTier<V>),
    ) -> usize {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        let keys = {
            let mut idx = self.index();
            let keys = select(&mut idx);
            for k in &keys {
                idx.forget(k);
            }
            keys
        };
        if let Some(l2) = &self.inner.l2 {
            remove_l2(l2.as_ref());
        }
        self.invalidated(&keys);
        keys.len()
    }

    /// Calls `f` with every key removed by `remove` or an invalidation (after removal).
    pub fn on_invalidate(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        self.inner
            .callbacks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::new(f));
    }

    /// Removes every entry from every tier.
    pub fn clear(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        *self.index() = Index::default();
        self.inner.l1.clear();
        if let Some(l2) = &self.inner.l2 {
            let _ = l2.clear();
        }
    }

    /// The value for `key`; on a miss in every tier, runs `loader` once however many tasks miss
    /// the same key at the same time, stores its value in every tier and hands it to all of them.
    ///
    /// A loader error is not cached and reaches every waiter as [`Error::Load`]. If the loader
    /// panics, the waiters receive [`Error::LoadAbandoned`]; if the loading task is cancelled
    /// (its future dropped), one of the waiters runs the loader instead. A value loaded while an
    /// invalidation ran is returned but not cached.
    pub async fn get_or_load<F, Fut, E>(&self, key: &str, loader: F) -> Result<V, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: fmt::Display,
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
        E: fmt::Display,
    {
        let inner = &*self.inner;
        loop {
            if let Some(v) = self.get(key) {
                return Ok(v);
            }
            let role = {
                let mut m = lock(&inner.inflight);
                match m.get(key) {
                    Some(rx) => Err(rx.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        let key: Arc<str> = key.into();
                        m.insert(Arc::clone(&key), rx);
                        Ok(FlightGuard { inner, key, tx })
                    }
                }
            };
            let mut rx = match role {
                Ok(guard) => return self.lead(guard, opts, loader).await,
                Err(rx) => rx,
            };
            let Ok(outcome) = rx.wait_for(Option::is_some).await else {
                continue; // The leader was cancelled: try again, perhaps as the leader.
            };
            let outcome = outcome.as_ref().map(Arc::clone);
            match outcome.as_deref() {
                Some(Outcome::Value(v)) => return Ok(v.clone()),
                Some(Outcome::Failed(message)) => {
                    return Err(Error::Load {
                        key: key.to_owned(),
                        message: message.clone(),
                    });
                }
                Some(Outcome::Panicked) => {
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
        guard: FlightGuard<'_, V, S>,
        opts: EntryOptions,
        loader: F,
    ) -> Result<V, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: fmt::Display,
    {
        let inner = &*self.inner;
        let key = Arc::clone(&guard.key);
        // A leader that finished just before we registered may have stored the value already.
        if let Some(v) = self.get(&key) {
            guard
                .tx
                .send_replace(Some(Arc::new(Outcome::Value(v.clone()))));
            return Ok(v);
        }
        let epoch = inner.epoch.load(Ordering::Acquire);
        let started = Instant::now();
        let result = loader().await;
        let stats = inner.l1.stats();
        stats.load_latency.record_duration(started.elapsed());
        match result {
            Ok(v) => {
                stats.loads_ok.inc();
                let _ = self.put(&key, v.clone(), opts, Some(epoch));
                guard
                    .tx
                    .send_replace(Some(Arc::new(Outcome::Value(v.clone()))));
                Ok(v)
            }
            Err(e) => {
                stats.loads_err.inc();
                let message = e.to_string();
                guard
                    .tx
                    .send_replace(Some(Arc::new(Outcome::Failed(message.clone()))));
                Err(Error::Load {
                    key: key.to_string(),
                    message,
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
        E: fmt::Display,
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

    /// The L1's statistics (with the load counters and latency histogram).
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.l1.stats_snapshot()
    }

    /// The L1's statistics handles (for the load-latency histogram).
    pub fn stats_handles(&self) -> &TierStats {
        self.inner.l1.stats()
    }

    /// Entries in L1 (including expired ones not yet reclaimed).
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

    /// Counts `n` reads of `key` toward its heat.
    fn heat(&self, key: &str, n: u64) {
        let mut heat = lock(&self.inner.heat);
        if let Some(c) = heat.get_mut(key) {
            *c = c.saturating_add(n);
            return;
        }
        if heat.len() >= HEAT_KEYS {
            heat.retain(|_, c| {
                *c /= 2;
                *c > 0
            });
            if heat.len() >= HEAT_KEYS {
                return;
            }
        }
        heat.insert(key.into(), n);
    }

    /// Saves the read counts sampled since the last flush into the L2 (where
    /// [`warm_from_l2`](Self::warm_from_l2) finds them after a restart) and makes every L2
    /// write durable. Call it before shutting down, and now and then while serving. Without an
    /// L2 it does nothing.
    pub fn flush(&self) -> Result<(), Error> {
        let Some(l2) = &self.inner.l2 else {
            return Ok(());
        };
        let heat = std::mem::take(&mut *lock(&self.inner.heat));
        let reads: Vec<(&str, u64)> = heat.iter().map(|(k, n)| (k.as_ref(), *n)).collect();
        l2.save_heat(&reads)?;
        l2.flush()
    }

    /// Copies up to `n` entries from L2 into L1, hottest first: the keys most read before the
    /// last [`flush`](Self::flush) (one L1 hit in 64 and every L2 hit are counted; counts
    /// halve at every flush, so old heat fades), then the most recently written. Returns how
    /// many were loaded. Use it at start-up, before serving. Without an L2 it does nothing.
    pub fn warm_from_l2(&self, n: usize) -> Result<usize, Error> {
        let Some(l2) = &self.inner.l2 else {
            return Ok(0);
        };
        // Candidates in order of preference; keys read often but since removed are skipped.
        let mut keys = l2.hottest_keys(n)?;
        let mut seen: HashSet<String> = keys.iter().cloned().collect();
        keys.extend(
            l2.newest_keys(n)?
                .into_iter()
                .filter(|k| seen.insert(k.clone())),
        );
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let mut found = Vec::new();
        for key in keys {
            if found.len() == n {
                break;
            }
            if self.inner.l1.contains(key.as_str()) {
                continue;
            }
            if let Some(hit) = l2.get(&key)? {
                found.push((key, hit));
            }
        }
        let mut loaded = 0;
        // Coldest first, so that the hottest entries are the most recently inserted in L1.
        for (key, hit) in found.into_iter().rev() {
            let key: Arc<str> = key.as_str().into();
            if self.store_l1(
                &key,
                hit.value,
                hit.ttl,
                hit.tags,
                (None, false),
                Some(epoch),
            ) {
                loaded += 1;
            }
        }
        Ok(loaded)
    }

    /// Removes expired L1 entries now; returns how many.
    pub fn purge_expired(&self) -> usize {
        self.inner.l1.purge_expired()
    }
}
