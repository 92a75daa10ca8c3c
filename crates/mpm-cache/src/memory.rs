//! `MemoryTier`: the L1, a sharded table (quick_cache's policy, compact ghost records) with
//! TTL, weights, pinning and an eviction listener.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use equivalent::Equivalent;

use mpm_metrics::{Registry, Scope};

use crate::Error;
use crate::admission::{
    self, ADAPTIVE_GHOST_ALLOCATION, ADAPTIVE_HOT_ALLOCATION, Adaptive, Admission, Verdict,
};
use crate::clock::{self, Clock};
use crate::ledger::Ledger;
use crate::metrics::{self, SizeGauges, Target};
use crate::stats::{RemovalCause, StatsSnapshot, TierStats};
use crate::table::{Left, Sizes, Table};

/// The tier's default hasher: foldhash's quality variant, randomly seeded (what quick_cache
/// uses by default).
pub type DefaultHashBuilder = foldhash::quality::RandomState;

/// The hot ring's share of the capacity under [`Admission::All`] unless told otherwise, chosen
/// by replaying the traces with `cargo xtask trace`, which prints the figures.
pub const DEFAULT_HOT_ALLOCATION: f64 = 0.9;

/// Ghost records per entry unless told otherwise (quick_cache's default is 0.5), chosen with
/// the same trace replays: it raised the hit ratio on the ARC and LIRS multi1 traces by up to
/// 4.6 points. A record is a 16-bit fingerprint, four to a bucket word (about two bytes an
/// entry).
pub const DEFAULT_GHOST_ALLOCATION: f64 = 1.0;

/// The fewest entries a shard holds under [`Admission::Adaptive`] when the shard count is not
/// set.
const MIN_ADAPTIVE_SHARD: usize = 128;

/// The fewest entries a shard holds under [`Admission::All`] when the shard count is not set
/// (quick_cache's floor).
const MIN_SHARD: usize = 32;

/// The deadline of an entry that never expires (the largest 60-bit value, which no clock
/// reaches: see [`clock::MAX_MS`]).
const NEVER: u64 = clock::MAX_MS;

// A slot's word is never zero (see `Slot::meta`): a hit returns no wider than the slot.
const _: () = assert!(size_of::<Option<Slot<u64>>>() == size_of::<Slot<u64>>());

/// A value as the L1 stores it: the value, its deadline on the tier's clock, and its pin.
#[derive(Clone)]
pub(crate) struct Slot<V> {
    pub(crate) value: V,
    /// The deadline on the tier's clock in the high 60 bits ([`NEVER`] when none), and in the
    /// low four: the pin, whether the adaptive admission samples the key (its hits are
    /// replayed in the shadow caches), whether the tier admits adaptively (so a hit on the
    /// default tier tests a bit it has loaded already), and [`ONE`], always set: one word per
    /// entry. With the deadline on top, a hit's expiry test is one shift of the clock and one
    /// comparison with the whole word, and an entry without a deadline needs no test of its
    /// own: no clock reaches [`NEVER`]. The word is never zero, so that `Option<Slot<V>>`, what
    /// the table's get returns, is no larger than the slot (for a `u64` value, two registers
    /// rather than a copy through memory).
    meta: NonZeroU64,
}

const FLAGS: u32 = 4;
const PIN: u64 = 1;
const SAMPLED: u64 = 1 << 1;
const ADAPTIVE: u64 = 1 << 2;
/// Set in every slot's word, so that it is never zero.
const ONE: NonZeroU64 = NonZeroU64::new(1 << 3).unwrap();

impl<V> Slot<V> {
    fn new(value: V, deadline: u64, pinned: bool) -> Self {
        let meta = ONE | (deadline.min(NEVER) << FLAGS) | u64::from(pinned);
        Self { value, meta }
    }

    #[inline]
    fn deadline(&self) -> u64 {
        self.meta.get() >> FLAGS
    }

    /// Whether the entry is live at `now` (a reading of the tier's clock, so at most
    /// [`NEVER`]): `now <= deadline`, as `now * 16 <= deadline * 16 + flags`.
    #[inline(always)]
    fn live_at(&self, now: u64) -> bool {
        now << FLAGS <= self.meta.get()
    }

    /// Whether the entry has a deadline and `now` is past it: not [`Slot::live_at`].
    #[inline(always)]
    fn expired_at(&self, now: u64) -> bool {
        !self.live_at(now)
    }

    /// The deadline and weight the ledger knows the entry by, given the weight the table holds
    /// it at (`None` if it never expires).
    #[inline]
    fn ledger_key(&self, weight: u64) -> Option<(u64, u64)> {
        (self.deadline() != NEVER).then(|| (self.deadline(), weight))
    }

    #[inline]
    fn sampled(&self) -> bool {
        self.meta.get() & SAMPLED != 0
    }

    #[inline]
    fn pinned(&self) -> bool {
        self.meta.get() & PIN != 0
    }
}

type WeighFn<K, V> = Arc<dyn Fn(&K, &V) -> u64 + Send + Sync>;
type ListenFn<K, V> = Arc<dyn Fn(&K, &V, RemovalCause) + Send + Sync>;

#[derive(Clone)]
pub(crate) struct SlotWeighter<K, V> {
    weigh: Option<WeighFn<K, V>>,
    /// The least weight of an entry, so that a weight bound also bounds the entry count.
    floor: u64,
}

impl<K, V> SlotWeighter<K, V> {
    #[inline]
    fn weight_of(&self, key: &K, slot: &Slot<V>) -> u64 {
        match &self.weigh {
            None => 1,
            Some(f) => f(key, &slot.value).max(self.floor).max(1),
        }
    }
}

/// What the eviction hooks share: the clock (to tell expiry from capacity), the statistics and
/// the user's listener.
pub(crate) struct Shared<K, V> {
    clock: Clock,
    stats: TierStats,
    listener: Option<ListenFn<K, V>>,
    /// The tier's weigher, run once as an entry enters (the table keeps the weight and hands
    /// it back as the entry leaves, so the ledger takes out exactly what it put in).
    weigher: SlotWeighter<K, V>,
    /// Expired entries still held, so that `len` and `weight` count only live ones.
    ledger: Ledger,
}

impl<K, V> Shared<K, V> {
    /// Every entry that leaves the tier, by any cause, passes here exactly once.
    fn notify(&self, key: &K, slot: &Slot<V>, weight: u64, cause: RemovalCause) {
        if let Some((d, w)) = slot.ledger_key(weight) {
            self.ledger.sub(d, w);
        }
        self.report(key, slot, cause);
    }

    /// Statistics and the listener for an entry whose ledger record is already taken away.
    #[inline]
    fn report(&self, key: &K, slot: &Slot<V>, cause: RemovalCause) {
        self.stats.removed(cause);
        if let Some(l) = &self.listener {
            l(key, &slot.value, cause);
        }
    }

    fn cause_of(&self, slot: &Slot<V>) -> RemovalCause {
        if slot.expired_at(self.clock.now_ms()) {
            RemovalCause::Expired
        } else {
            RemovalCause::Capacity
        }
    }
}

/// An entry that left the table: its hash, key and slot, the weight the table held it at (so
/// that its ledger record goes exactly as it came, whatever the weigher would say now), and
/// why.
type Gone<K, V> = (u64, K, Slot<V>, u64, RemovalCause);

/// Entries that left during one insert, with their hashes; reported after the table has
/// released the shard lock, so a listener may call back into the tier.
struct Evicted<K, V> {
    /// The first lives inline: most inserts into a full tier evict exactly one entry.
    first: Option<Gone<K, V>>,
    rest: Vec<Gone<K, V>>,
}

impl<K, V> Evicted<K, V> {
    fn new() -> Self {
        Self {
            first: None,
            rest: Vec::new(),
        }
    }

    #[inline]
    fn push(&mut self, e: Gone<K, V>) {
        if self.first.is_none() {
            self.first = Some(e);
        } else {
            self.rest.push(e);
        }
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = &Gone<K, V>> {
        self.first.iter().chain(self.rest.iter())
    }

    /// Calls `f` on each, in order: [`iter`](Self::iter) without the chained iterator's
    /// bookkeeping (the rest is empty unless the first is set). With it, and one pass instead
    /// of two over what an insert evicted, an insert into a full tier counted 555 instructions
    /// instead of 622 (`cargo xtask budgets cache`).
    #[inline(always)]
    fn for_each(&self, mut f: impl FnMut(&Gone<K, V>)) {
        if let Some(e) = &self.first {
            f(e);
            self.rest.iter().for_each(f);
        }
    }
}

impl<K, V> Shared<K, V> {
    /// The cause of an entry's leaving the table.
    #[inline]
    fn cause(&self, slot: &Slot<V>, left: Left) -> RemovalCause {
        match left {
            Left::Replaced => RemovalCause::Replaced,
            Left::Evicted => self.cause_of(slot),
        }
    }
}

/// Builds a [`MemoryTier`].
///
/// ```
/// use mpm_cache::MemoryTier;
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
///
/// let tier: MemoryTier<String, Vec<u8>> = MemoryTier::builder()
///     .max_entries(NonZeroUsize::new(10_000).unwrap())
///     .max_weight(64 << 20) // 64 MiB
///     .weigher(|k: &String, v: &Vec<u8>| (k.len() + v.len()) as u64)
///     .default_ttl(Some(Duration::from_secs(300)))
///     .build()?;
/// tier.insert("k".to_owned(), vec![1, 2, 3]);
/// assert_eq!(tier.get("k"), Some(vec![1, 2, 3]));
/// # Ok::<(), mpm_cache::Error>(())
/// ```
pub struct MemoryTierBuilder<K, V, S = DefaultHashBuilder> {
    max_entries: Option<NonZeroUsize>,
    max_weight: Option<u64>,
    weigh: Option<WeighFn<K, V>>,
    default_ttl: Option<Duration>,
    hot_allocation: Option<f64>,
    ghost_allocation: Option<f64>,
    admission: Admission,
    shards: Option<usize>,
    hasher: S,
    clock: Clock,
    stats: TierStats,
    metrics: Target,
    listener: Option<ListenFn<K, V>>,
}

impl<K, V> Default for MemoryTierBuilder<K, V> {
    fn default() -> Self {
        Self {
            max_entries: None,
            max_weight: None,
            weigh: None,
            default_ttl: None,
            hot_allocation: None,
            ghost_allocation: None,
            admission: Admission::default(),
            shards: None,
            hasher: DefaultHashBuilder::default(),
            clock: Clock::default(),
            stats: TierStats::default(),
            metrics: None,
            listener: None,
        }
    }
}

impl<K, V, S> MemoryTierBuilder<K, V, S> {
    /// Bounds the number of entries (default 10,000 when no weight bound is set either).
    pub fn max_entries(mut self, n: NonZeroUsize) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// Bounds the total weight (for example bytes, with a [`weigher`](Self::weigher)). With both
    /// bounds set, every entry weighs at least `max_weight / max_entries`, so both hold.
    pub fn max_weight(mut self, weight: u64) -> Self {
        self.max_weight = Some(weight);
        self
    }

    /// How much an entry weighs (a weight of 0 counts as 1). Without a weigher every entry weighs 1.
    /// It runs once per insert, outside the tier's locks; the entry keeps that weight until it
    /// leaves, even if its value's size changes in place meanwhile.
    pub fn weigher(mut self, f: impl Fn(&K, &V) -> u64 + Send + Sync + 'static) -> Self {
        self.weigh = Some(Arc::new(f));
        self
    }

    /// The TTL of entries inserted with [`MemoryTier::insert`]; `None` (the default) means they
    /// never expire.
    pub fn default_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// The hot ring's share of the capacity (quick_cache's `hot_allocation`), in `[0, 1]`;
    /// default 0.97 under [`Admission::Adaptive`]
    /// (the default policy; the value it was tuned with), [`DEFAULT_HOT_ALLOCATION`] under
    /// [`Admission::All`].
    pub fn hot_allocation(mut self, fraction: f64) -> Self {
        self.hot_allocation = Some(fraction);
        self
    }

    /// Ghost records per entry (quick_cache's `ghost_allocation`), in `[0, 1]`; default
    /// [`DEFAULT_GHOST_ALLOCATION`].
    pub fn ghost_allocation(mut self, fraction: f64) -> Self {
        self.ghost_allocation = Some(fraction);
        self
    }

    /// How a new key enters a full tier; default [`Admission::Adaptive`]: a frequency filter
    /// in front of inserts that sampled shadow caches switch on (loops, scans) and off
    /// (recency-heavy workloads), so an insert into a full tier may be refused; a refused
    /// insert is reported to the listener as an entry evicted at once
    /// ([`RemovalCause::Capacity`]). Pinned inserts and updates of a present key are never
    /// refused. [`Admission::All`] lets every insert enter (quick_cache's policy): a cheaper
    /// insert, and a hit ratio far below moka's on loops and scans (`cargo xtask trace`).
    pub fn admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
    }

    /// The number of shards (a power of two); default 4 per core, fewer for a small tier (at
    /// least 32 entries a shard, 128 under [`Admission::Adaptive`]).
    pub fn shards(mut self, n: NonZeroUsize) -> Self {
        self.shards = Some(n.get());
        self
    }

    /// The clock TTLs are measured on (default: the process-wide coarse clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Reports the tier's metrics into `registry` under the instance `name` (see the crate
    /// docs, "Metrics"): the name is claimed at [`build`](Self::build), which fails if another
    /// cache holds it. Given to a [`TieredCacheBuilder`](crate::TieredCacheBuilder) as its L1,
    /// it names the whole cache unless the tiered builder was given `.metrics` itself.
    pub fn metrics(mut self, registry: &Registry, name: &str) -> Self {
        self.metrics = Some((registry.clone(), name.to_owned()));
        self
    }

    /// The counters to record into (a tiered cache's, registered by its builder).
    pub(crate) fn stats(mut self, stats: TierStats) -> Self {
        self.stats = stats;
        self
    }

    /// Takes the `.metrics(..)` target out, for the tiered cache that reports for its L1.
    pub(crate) fn take_metrics(&mut self) -> Target {
        self.metrics.take()
    }

    /// Called after an entry leaves the tier, with the cause. It runs outside the tier's locks,
    /// so it may use the tier.
    pub fn eviction_listener(
        mut self,
        f: impl Fn(&K, &V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Arc::new(f));
        self
    }

    /// The same options for a tier whose values wrap a `V` (as `TieredCache`'s L1 wraps each
    /// value with its file dependencies): the weigher and the listener see the `V` inside, and
    /// `also` hears every removal after the listener.
    pub(crate) fn wrapping<W: 'static>(
        self,
        inner: fn(&W) -> &V,
        also: impl Fn(&K, &W, RemovalCause) + Send + Sync + 'static,
    ) -> MemoryTierBuilder<K, W, S>
    where
        K: 'static,
        V: 'static,
    {
        let weigh = self
            .weigh
            .map(|f| -> WeighFn<K, W> { Arc::new(move |k, w| f(k, inner(w))) });
        let listener = self.listener;
        let listener: ListenFn<K, W> = Arc::new(move |k, w, cause| {
            if let Some(l) = &listener {
                l(k, inner(w), cause);
            }
            also(k, w, cause);
        });
        MemoryTierBuilder {
            max_entries: self.max_entries,
            max_weight: self.max_weight,
            weigh,
            default_ttl: self.default_ttl,
            hot_allocation: self.hot_allocation,
            ghost_allocation: self.ghost_allocation,
            admission: self.admission,
            shards: self.shards,
            hasher: self.hasher,
            clock: self.clock,
            stats: self.stats,
            metrics: self.metrics,
            listener: Some(listener),
        }
    }

    /// Uses `hasher` for the tier (for example a fixed seed, for repeatable hit ratios).
    pub fn hasher<S2>(self, hasher: S2) -> MemoryTierBuilder<K, V, S2> {
        MemoryTierBuilder {
            max_entries: self.max_entries,
            max_weight: self.max_weight,
            weigh: self.weigh,
            default_ttl: self.default_ttl,
            hot_allocation: self.hot_allocation,
            ghost_allocation: self.ghost_allocation,
            admission: self.admission,
            shards: self.shards,
            hasher,
            clock: self.clock,
            stats: self.stats,
            metrics: self.metrics,
            listener: self.listener,
        }
    }

    /// Builds the tier; refuses out-of-range fractions and a weight bound of zero, and (with
    /// [`metrics`](Self::metrics)) a name another cache holds in that registry.
    pub fn build(mut self) -> Result<MemoryTier<K, V, S>, Error>
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        S: BuildHasher + Clone + Send + Sync + 'static,
    {
        let Some((registry, name)) = self.metrics.take() else {
            return self.build_with(None);
        };
        let scope = registry.scope(metrics::CACHE, &name)?;
        self.stats = metrics::tier_stats(&scope, metrics::L1)?;
        let gauges = SizeGauges::register(&scope, metrics::L1)?;
        let tier = self.build_with(Some(scope.clone()))?;
        scope.collector(&tier.inner, move |inner| {
            gauges.set(inner.len(), inner.weight());
        });
        Ok(tier)
    }

    /// Builds the tier, keeping `scope` (and so its claim and collectors) as long as it lives.
    fn build_with(self, scope: Option<Scope>) -> Result<MemoryTier<K, V, S>, Error>
    where
        K: Eq + Hash + Clone,
        V: Clone,
        S: BuildHasher + Clone,
    {
        let bad = |what: String| Err(Error::InvalidConfig { what });
        let (hot, ghost) = match self.admission {
            Admission::All => (DEFAULT_HOT_ALLOCATION, DEFAULT_GHOST_ALLOCATION),
            Admission::Adaptive => (ADAPTIVE_HOT_ALLOCATION, ADAPTIVE_GHOST_ALLOCATION),
        };
        let hot = self.hot_allocation.unwrap_or(hot);
        let ghost = self.ghost_allocation.unwrap_or(ghost);
        for (name, f) in [
            ("hot_allocation", Some(hot)),
            ("ghost_allocation", Some(ghost)),
        ] {
            if let Some(f) = f
                && !(0.0..=1.0).contains(&f)
            {
                return bad(format!("{name} must be within [0, 1], got {f}"));
            }
        }
        if self.max_weight == Some(0) {
            return bad("max_weight must be at least 1".into());
        }
        if let Some(s) = self.shards
            && !s.is_power_of_two()
        {
            return bad(format!("shards must be a power of two, got {s}"));
        }
        let entries = self.max_entries.map(NonZeroUsize::get);
        let (weight_capacity, estimated, weight_floor, weigh) = match (self.max_weight, self.weigh)
        {
            (Some(w), Some(f)) => {
                let est = entries.unwrap_or_else(|| usize::try_from(w.min(1 << 20)).unwrap_or(1));
                let floor = entries.map_or(1, |n| (w / n as u64).max(1));
                (w, est, floor, Some(f))
            }
            (Some(w), None) => {
                // Without a weigher every entry weighs 1: the weight bound is an entry bound.
                let n = entries.map_or(w, |n| w.min(n as u64));
                (n, usize::try_from(n).unwrap_or(usize::MAX), 1, None)
            }
            (None, f) => {
                let n = entries.unwrap_or(10_000);
                if f.is_some() {
                    // A weigher without a weight bound: bound the count, ignore the weights.
                }
                (n as u64, n, 1, None)
            }
        };
        let floor = match self.admission {
            // The filter compares a key with its shard's last victim, and small shards make
            // that a poor stand-in.
            Admission::Adaptive => MIN_ADAPTIVE_SHARD,
            Admission::All => MIN_SHARD,
        };
        let shards = self
            .shards
            .unwrap_or_else(|| default_shards(estimated, floor));
        let weigher = SlotWeighter {
            weigh,
            floor: weight_floor,
        };
        let shared = Arc::new(Shared {
            clock: self.clock.clone(),
            stats: self.stats.clone(),
            listener: self.listener,
            weigher,
            ledger: Ledger::default(),
        });
        let cache = Table::new(Sizes {
            capacity: weight_capacity,
            estimated,
            hot,
            ghost,
            shards,
        });
        cache.reserve(initial_reserve(estimated, cache.num_shards()));
        let adaptive = match self.admission {
            Admission::All => None,
            Admission::Adaptive => Some(Box::new(Adaptive::new(
                estimated,
                cache.num_shards(),
                // A seed drawn from the tier's hasher (the hash of nothing): a seeded (or
                // fixed) tier hasher makes the policy's hashes seeded (or fixed) too.
                self.hasher.build_hasher().finish(),
            ))),
        };
        Ok(MemoryTier {
            inner: Arc::new(Inner {
                cache,
                clock: self.clock,
                default_ttl: self.default_ttl,
                default_ttl_ms: self.default_ttl.map(clock::millis),
                stats: self.stats,
                shared,
                capacity: weight_capacity,
                adaptive,
                hasher: self.hasher,
                _scope: scope,
            }),
        })
    }
}

/// The default number of shards: four per core, halved while a shard would hold fewer than
/// `floor` of the `estimated` entries.
fn default_shards(estimated: usize, floor: usize) -> usize {
    let mut s = std::thread::available_parallelism()
        .map_or(4, |n| n.get() * 4)
        .next_power_of_two();
    while s > 1 && estimated / s < floor {
        s /= 2;
    }
    s
}

/// Entries to reserve in a new tier so that, growing by doubling, each shard's slab ends up
/// holding its entries with almost no room to spare, instead of up to twice that: reserving
/// `full / 2^k` places makes the doublings land on `full`; `k` is chosen so that the first
/// reservation is small (between 128 and 255 places a shard, or the whole shard if it is
/// smaller), so an empty tier costs little.
fn initial_reserve(estimated: usize, shards: usize) -> usize {
    let shards = shards.max(1);
    let full = estimated.div_ceil(shards);
    let mut step = 1;
    while full / (step * 2) >= 128 {
        step *= 2;
    }
    full.div_ceil(step).saturating_mul(shards)
}

struct Inner<K, V, S> {
    cache: Table<K, Slot<V>>,
    clock: Clock,
    default_ttl: Option<Duration>,
    /// The default TTL in milliseconds, converted once rather than at every insert.
    default_ttl_ms: Option<u64>,
    stats: TierStats,
    shared: Arc<Shared<K, V>>,
    capacity: u64,
    /// The adaptive admission policy, with [`Admission::Adaptive`].
    adaptive: Option<Box<Adaptive>>,
    /// The tier's hasher: every key's hash (the table's shards and buckets, and the admission
    /// policy's victims per shard).
    hasher: S,
    /// Held while the tier lives: its claim on the registry and its collector.
    _scope: Option<Scope>,
}

impl<K, V, S> Inner<K, V, S>
where
    K: Eq + Hash + Clone,
    V: Clone,
    S: BuildHasher + Clone,
{
    fn len(&self) -> usize {
        let (expired, _) = self.shared.ledger.expired(self.clock.now_ms());
        self.cache
            .len()
            .saturating_sub(usize::try_from(expired).unwrap_or(usize::MAX))
    }

    fn weight(&self) -> u64 {
        let (_, expired) = self.shared.ledger.expired(self.clock.now_ms());
        self.cache.weight().saturating_sub(expired)
    }
}

/// A hit under [`Admission::Adaptive`] with work to do (one in [`HIT_SAMPLE`] per thread, and
/// the hits on sampled keys), kept out of line so the hot get stays short.
///
/// [`HIT_SAMPLE`]: crate::admission::HIT_SAMPLE
#[cold]
#[inline(never)]
fn adaptive_hit<Q>(adaptive: Option<&Adaptive>, key: &Q, sampled: bool, count: bool)
where
    Q: Hash + ?Sized,
{
    if let Some(a) = adaptive {
        a.on_hit(sampled, count, a.hash(key));
    }
}

/// The in-memory tier: a concurrent sharded table with
/// [quick_cache](https://docs.rs/quick_cache)'s policy (S3-FIFO-like, CLOCK on a hot and a
/// cold ring) with TTL on a coarse clock, a weight bound, pinned entries, an eviction
/// listener told the [`RemovalCause`], and statistics.
///
/// Clones share the same tier.
///
/// ```
/// use mpm_cache::{Clock, MemoryTier};
/// use std::time::Duration;
///
/// let (clock, hand) = Clock::manual();
/// let tier: MemoryTier<&str, u32> = MemoryTier::builder().clock(clock).build()?;
/// tier.insert_with_ttl("short", 1, Some(Duration::from_secs(1)));
/// tier.insert_with_ttl("forever", 2, None);
/// hand.advance(Duration::from_secs(2));
/// assert_eq!(tier.get("short"), None);
/// assert_eq!(tier.get("forever"), Some(2));
/// assert_eq!(tier.len(), 1); // the expired entry was reclaimed
/// # Ok::<(), mpm_cache::Error>(())
/// ```
pub struct MemoryTier<K, V, S = DefaultHashBuilder> {
    inner: Arc<Inner<K, V, S>>,
}

impl<K, V, S> Clone for MemoryTier<K, V, S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V, S> fmt::Debug for MemoryTier<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTier")
            .field("capacity", &self.inner.capacity)
            .field("default_ttl", &self.inner.default_ttl)
            .finish_non_exhaustive()
    }
}

impl<K, V> MemoryTier<K, V>
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    /// A builder with the defaults: 10,000 entries, no TTL, the coarse clock.
    pub fn builder() -> MemoryTierBuilder<K, V> {
        MemoryTierBuilder::default()
    }

    /// A tier bounded to `n` entries, with no TTL.
    pub fn with_capacity(n: NonZeroUsize) -> Self {
        match Self::builder().max_entries(n).build_with(None) {
            Ok(t) => t,
            // The defaults and a non-zero entry bound are always valid.
            Err(e) => unreachable!("default MemoryTier configuration refused: {e}"),
        }
    }
}

impl<K, V, S> MemoryTier<K, V, S>
where
    K: Eq + Hash + Clone,
    V: Clone,
    S: BuildHasher + Clone,
{
    /// The live value for `key`, counting a hit or a miss. An expired entry is removed and
    /// reported to the listener as [`RemovalCause::Expired`].
    ///
    /// Always inlined: out of line, the call cost the default tier's hot get about 16 of its
    /// 218 instructions under callgrind.
    #[inline(always)]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let v = self.get_counting_hits(key);
        if v.is_none() {
            self.inner.stats.misses.inc();
        }
        v
    }

    /// [`get`](Self::get) counting a hit but not a miss: for a tiered cache, where a lookup
    /// that misses the L1 may still be answered below it and is counted once, there.
    ///
    /// Always inlined, like `get`: since the adaptive hook's hit tick made it bigger, the
    /// inliner left it out of line, which cost the default tier's hot get 18 instructions.
    #[inline(always)]
    pub(crate) fn get_counting_hits<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let inner = &*self.inner;
        match inner
            .cache
            .get(inner.hasher.hash_one(key), |k| key.equivalent(k))
        {
            Some(slot) if slot.live_at(inner.clock.now_ms()) => {
                inner.stats.hits.inc();
                if slot.meta.get() & ADAPTIVE != 0 {
                    // Two branches, each to the call: fewer instructions than combining them.
                    if admission::tick() {
                        adaptive_hit(inner.adaptive.as_deref(), key, slot.sampled(), true);
                    } else if slot.sampled() {
                        adaptive_hit(inner.adaptive.as_deref(), key, true, false);
                    }
                }
                Some(slot.value)
            }
            Some(_) => {
                self.reclaim(key);
                None
            }
            None => None,
        }
    }

    /// Like [`get`](Self::get) but neither counts nor changes the entry's hotness.
    pub fn peek<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let slot = self.peek_slot(key)?;
        self.live(&slot).then_some(slot.value)
    }

    /// The time to live left for `key`: `None` if absent or expired, `Some(None)` if it never
    /// expires.
    pub fn ttl_of<Q>(&self, key: &Q) -> Option<Option<Duration>>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let slot = self.peek_slot(key)?;
        if !self.live(&slot) {
            return None;
        }
        Some((slot.deadline() != NEVER).then(|| {
            Duration::from_millis(slot.deadline().saturating_sub(self.inner.clock.now_ms()))
        }))
    }

    /// Whether a live entry for `key` is present (does not count as a lookup).
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.peek_slot(key).is_some_and(|s| self.live(&s))
    }

    /// Whether an entry (live or expired but not yet reclaimed) occupies `key`.
    #[allow(dead_code)]
    pub(crate) fn occupies<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.inner.hasher.hash_one(key);
        self.inner.cache.contains(hash, |k| key.equivalent(k))
    }

    /// The slot for `key`, live or not, without counting.
    fn peek_slot<Q>(&self, key: &Q) -> Option<Slot<V>>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.inner.hasher.hash_one(key);
        self.inner.cache.peek(hash, |k| key.equivalent(k))
    }

    #[inline]
    fn live(&self, slot: &Slot<V>) -> bool {
        slot.live_at(self.inner.clock.now_ms())
    }

    fn reclaim<Q>(&self, key: &Q)
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let now = self.inner.clock.now_ms();
        let hash = self.inner.hasher.hash_one(key);
        if let Some((k, slot, weight)) =
            self.inner
                .cache
                .remove_if(hash, |k| key.equivalent(k), |s| s.expired_at(now))
        {
            self.made_room();
            self.inner
                .shared
                .notify(&k, &slot, weight, RemovalCause::Expired);
        }
    }

    /// An entry left other than by eviction: the adaptive admission lets inserts in until the
    /// tier is full again.
    #[inline]
    fn made_room(&self) {
        if let Some(a) = &self.inner.adaptive {
            a.room();
        }
    }

    /// Inserts with the tier's default TTL.
    pub fn insert(&self, key: K, value: V) {
        self.put(key, value, self.inner.default_ttl_ms, false);
    }

    /// Inserts with `ttl`; `None` means the entry never expires (not "the default").
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Option<Duration>) {
        self.put(key, value, ttl.map(clock::millis), false);
    }

    /// Inserts an entry that capacity eviction and [`shrink_to`](Self::shrink_to) never remove
    /// (TTL and invalidation still do). Pinned entries still count toward the bounds.
    pub fn insert_pinned(&self, key: K, value: V, ttl: Option<Duration>) {
        self.put(key, value, ttl.map(clock::millis), true);
    }

    /// Inserts with a TTL of `ttl_ms` milliseconds (`None`: never expires).
    fn put(&self, key: K, value: V, ttl_ms: Option<u64>, pinned: bool) {
        let inner = &*self.inner;
        let shared = &*inner.shared;
        let deadline = ttl_ms.map_or(NEVER, |ms| inner.clock.deadline_in(ms));
        inner.stats.inserts.inc();
        let mut slot = Slot::new(value, deadline, pinned);
        let hash = inner.hasher.hash_one(&key);
        if let Some(a) = &inner.adaptive {
            let verdict = a.admit(
                a.hash(&key),
                || hash,
                pinned,
                || inner.cache.contains(hash, |k| *k == key),
            );
            match verdict {
                Verdict::Refused => {
                    // As if it entered and was evicted at once.
                    shared.report(&key, &slot, RemovalCause::Capacity);
                    return;
                }
                Verdict::Sampled => slot.meta |= ADAPTIVE | SAMPLED,
                Verdict::Admitted => slot.meta |= ADAPTIVE,
            }
        }
        // The weigher is the user's code: it runs here, outside the table's locks.
        let weight = shared.weigher.weight_of(&key, &slot);
        let entered = slot.ledger_key(weight);
        let mut evicted = Evicted::new();
        inner
            .cache
            .insert(hash, key, slot, weight, pinned, &mut |h, k, s, w, left| {
                let cause = shared.cause(&s, left);
                evicted.push((h, k, s, w, cause));
            });
        let ledger = shared.ledger.writer();
        if let Some((d, w)) = entered {
            ledger.add(d, w);
        }
        if evicted.first.is_none() {
            return;
        }
        if let Some(a) = &inner.adaptive
            && a.filtering()
            && let Some((h, k, _, _, _)) =
                evicted.iter().rev().find(|e| e.4 == RemovalCause::Capacity)
        {
            a.evicted(*h, a.hash(k));
        }
        // One pass: each entry's ledger record goes, then it is reported.
        evicted.for_each(|(_, k, slot, w, cause)| {
            if let Some((d, w)) = slot.ledger_key(*w) {
                ledger.sub(d, w);
            }
            shared.report(k, slot, *cause);
        });
    }

    /// Removes `key`, returning its live value; the listener hears [`RemovalCause::Invalidated`].
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.inner.hasher.hash_one(key);
        let (k, slot, weight) = self.inner.cache.remove(hash, |k| key.equivalent(k))?;
        self.made_room();
        let live = self.live(&slot);
        let cause = if live {
            RemovalCause::Invalidated
        } else {
            RemovalCause::Expired
        };
        self.inner.shared.notify(&k, &slot, weight, cause);
        live.then_some(slot.value)
    }

    /// Removes every entry (each reported as [`RemovalCause::Invalidated`]).
    pub fn clear(&self) {
        self.made_room();
        for (k, slot, weight) in self.inner.cache.drain() {
            self.inner
                .shared
                .notify(&k, &slot, weight, RemovalCause::Invalidated);
        }
    }

    /// Removes every expired entry now; returns how many. Costs a walk over the whole tier.
    pub fn purge_expired(&self) -> usize {
        let now = self.inner.clock.now_ms();
        let expired = self
            .inner
            .cache
            .collect(|k, s| s.expired_at(now).then(|| k.clone()));
        let mut n = 0;
        for key in expired {
            let hash = self.inner.hasher.hash_one(&key);
            if let Some((k, slot, weight)) =
                self.inner
                    .cache
                    .remove_if(hash, |k| *k == key, |s| s.expired_at(now))
            {
                self.inner
                    .shared
                    .notify(&k, &slot, weight, RemovalCause::Expired);
                n += 1;
            }
        }
        if n > 0 {
            self.made_room();
        }
        n
    }

    /// Starts a background thread that calls [`purge_expired`](Self::purge_expired) every
    /// `every`, so that `len` and `weight` stay true even for entries nobody reads again. The
    /// thread holds only a weak reference and ends once every clone of the tier is dropped.
    pub fn spawn_reclaimer(&self, every: Duration) -> std::io::Result<std::thread::JoinHandle<()>>
    where
        K: Send + Sync + 'static,
        V: Send + Sync + 'static,
        S: Send + Sync + 'static,
    {
        let weak = Arc::downgrade(&self.inner);
        std::thread::Builder::new()
            .name("mpm-cache-reclaim".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    let Some(inner) = weak.upgrade() else { return };
                    MemoryTier { inner }.purge_expired();
                }
            })
    }

    /// Evicts the coldest entries until the tier holds at most `fraction` of its capacity (for
    /// example 0.5 or 0.25), then restores the capacity. Pinned entries stay. Returns the number
    /// of entries removed. Expired entries go first.
    pub fn shrink_to(&self, fraction: f64) -> Result<usize, Error> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(Error::InvalidConfig {
                what: format!("shrink fraction must be within [0, 1], got {fraction}"),
            });
        }
        let before = self.inner.cache.len();
        self.purge_expired();
        let target = ((self.inner.capacity as f64) * fraction).floor() as u64;
        let shared = &*self.inner.shared;
        let mut evicted = Evicted::new();
        self.inner
            .cache
            .set_capacity(target.max(1), &mut |h, k, s, w, left| {
                let cause = shared.cause(&s, left);
                evicted.push((h, k, s, w, cause));
            });
        evicted.for_each(|(_, k, slot, w, cause)| shared.notify(k, slot, *w, *cause));
        drop(evicted);
        if fraction == 0.0 {
            // A capacity of one entry per shard may remain; drop the unpinned rest.
            let keys = self
                .inner
                .cache
                .collect(|k, s| (!s.pinned()).then(|| k.clone()));
            for key in keys {
                let hash = self.inner.hasher.hash_one(&key);
                if let Some((k, slot, weight)) =
                    self.inner
                        .cache
                        .remove_if(hash, |k| *k == key, |s| !s.pinned())
                {
                    shared.notify(&k, &slot, weight, RemovalCause::Capacity);
                }
            }
        }
        self.inner
            .cache
            .set_capacity(self.inner.capacity, &mut |_, _, _, _, _| {});
        self.made_room();
        Ok(before.saturating_sub(self.inner.cache.len()))
    }

    /// Live entries: expired ones are never counted, even before their memory is reclaimed (on
    /// access, by eviction, by [`purge_expired`](Self::purge_expired) or the
    /// [reclaimer](Self::spawn_reclaimer)).
    ///
    /// Exact when no other thread is changing the tier; costs one short lock per ledger shard.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the tier holds no live entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total weight of the live entries (expired ones are not counted, as in [`len`](Self::len)).
    pub fn weight(&self) -> u64 {
        self.inner.weight()
    }

    /// Entries held in memory, expired ones not yet reclaimed included.
    pub fn held(&self) -> usize {
        self.inner.cache.len()
    }

    /// The weight bound (the entry bound when no weigher is set).
    pub fn capacity(&self) -> u64 {
        self.inner.capacity
    }

    /// The tier's clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The tier's default TTL.
    pub fn default_ttl(&self) -> Option<Duration> {
        self.inner.default_ttl
    }

    /// The statistics handles (shared with any registry they were registered in).
    pub fn stats(&self) -> &TierStats {
        &self.inner.stats
    }

    /// A snapshot of the statistics.
    pub fn stats_snapshot(&self) -> StatsSnapshot {
        self.inner.stats.snapshot(self.len() as u64, self.weight())
    }

    /// Every live entry (key and value), in no particular order.
    pub fn entries(&self) -> Vec<(K, V)> {
        let now = self.inner.clock.now_ms();
        self.inner.cache.collect(|k, s| {
            (s.deadline() == NEVER || now <= s.deadline()).then(|| (k.clone(), s.value.clone()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{ADAPTIVE, MemoryTier, NEVER, PIN, SAMPLED, Slot, initial_reserve};
    use crate::Clock;
    use std::time::Duration;

    #[test]
    fn a_slot_is_live_up_to_its_deadline_whatever_its_flags() {
        for flags in [0, PIN, SAMPLED | ADAPTIVE, PIN | SAMPLED | ADAPTIVE] {
            for deadline in [0, 1, 7, 1_000, NEVER - 1] {
                let mut slot = Slot::new((), deadline, false);
                slot.meta |= flags;
                assert_eq!(slot.deadline(), deadline);
                assert!(
                    slot.live_at(0) && slot.live_at(deadline),
                    "{deadline} {flags}"
                );
                assert!(!slot.live_at(deadline + 1), "{deadline} {flags}");
            }
            let mut never = Slot::new((), u64::MAX, false);
            never.meta |= flags;
            assert_eq!(never.deadline(), NEVER);
            assert!(never.live_at(NEVER), "{flags}");
        }
    }

    #[test]
    fn an_entry_without_a_deadline_outlives_the_clock_moved_to_its_end() {
        let (clock, hand) = Clock::manual();
        let tier: MemoryTier<u32, u32> = MemoryTier::builder().clock(clock).build().unwrap();
        tier.insert_with_ttl(1, 1, None);
        tier.insert_with_ttl(2, 2, Some(Duration::from_secs(1)));
        hand.advance(Duration::MAX);
        hand.advance(Duration::MAX);
        assert_eq!(hand.now_ms(), NEVER);
        assert_eq!(tier.get(&1), Some(1));
        assert_eq!(tier.get(&2), None);
    }

    /// The places a shard's slab holds first and once it has grown by doubling from the
    /// reservation to its share of `estimated`.
    fn grown(estimated: usize, shards: usize) -> (usize, usize, usize) {
        let full = estimated.div_ceil(shards);
        let first = initial_reserve(estimated, shards).div_ceil(shards);
        let mut cap = first;
        while cap < full {
            cap *= 2;
        }
        (first, cap, full)
    }

    #[test]
    fn the_reservation_doubles_onto_the_entries() {
        for estimated in [
            1,
            31,
            100,
            1_000,
            10_000,
            12_345,
            100_000,
            1 << 20,
            3_000_017,
        ] {
            for shards in [1, 4, 8, 64] {
                let (first, cap, full) = grown(estimated, shards);
                // A small first reservation, and at most 2% to spare at the end.
                assert!(first <= 256, "{estimated} {shards}: {first}");
                assert!(
                    cap as f64 <= full as f64 * 1.02 + 1.0,
                    "{estimated} {shards}: {cap} for {full}"
                );
            }
        }
    }
}
