//! A tiered cache: an in-memory L1 with TTL, a durable disk L2, single-flight loading,
//! invalidation by key, prefix, tag and pattern, warming and statistics.
//!
//! Services that load agent profiles and configuration again and again want a cache that is as
//! fast as the fastest concurrent map on a hit, honours time-to-live without reading the system
//! clock on every get, survives restarts, loads each missing value once however many tasks ask
//! for it, forgets exactly what an event says is stale, and records its statistics into
//! `mpm-metrics`.
//!
//! - [`MemoryTier`]: the L1, on [quick_cache](https://docs.rs/quick_cache): entry and byte
//!   bounds (a weigher) at once, per-entry TTL, a default TTL and entries that never expire
//!   (`None` means never), pinned entries, `shrink_to(fraction)` under memory pressure, an
//!   eviction listener told the [`RemovalCause`] (capacity, expired, invalidated, replaced), a
//!   background reclaimer for expired entries, and [`TierStats`].
//! - [`DiskTier`]: the L2, one [redb](https://docs.rs/redb) file in a private (0700) directory;
//!   values serialized with serde and postcard, a CRC32 on every entry, TTL persisted as wall
//!   time, a byte bound evicting the oldest writes, durable removals (an invalidated key never
//!   comes back), corrupt entries and store files detected, counted and skipped.
//! - [`TieredCache`]: L1 then L2 (promoting hits) then the loader; write-through;
//!   [`get_or_load`](TieredCache::get_or_load) runs one loader per key however many tasks miss
//!   at once; invalidation by key, prefix, tag and fnmatch [`Pattern`] reaching both tiers;
//!   entries that depend on files; [`warm`](TieredCache::warm) with bounded concurrency and
//!   progress; [`warm_from_l2`](TieredCache::warm_from_l2) at start-up, hottest keys first
//!   (reads are sampled and saved into the L2 by [`flush`](TieredCache::flush)).
//! - [`InvalidationBus`]: events such as `agent_updated { agent_id }` mapped to patterns such
//!   as `agent:{agent_id}:*` (the guide's `EventInvalidationCache`).
//! - [`Clock`]: the coarse clock TTLs are measured on, or a manual clock for tests.
//!
//! # Example
//!
//! ```
//! use mpm_cache::{DiskTier, EntryOptions, InvalidationBus, MemoryTier, TieredCache};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let cache: TieredCache<String> = TieredCache::builder()
//!     .l1(MemoryTier::builder().default_ttl(Some(Duration::from_secs(300))))
//!     .l2(DiskTier::builder(dir.path()).open()?)
//!     .build()?;
//!
//! // Concurrent misses on one key run the loader once; the value lands in L1 and L2.
//! let profile = cache
//!     .get_or_load("agent:42:profile", || async { Ok::<_, std::io::Error>("engineer".to_owned()) })
//!     .await?;
//! assert_eq!(profile, "engineer");
//! cache.insert_with("agent:42:memory", "notes".into(), EntryOptions::new().tag("team:core"));
//!
//! // An event invalidates everything about agent 42, in memory and on disk.
//! let bus = InvalidationBus::default();
//! bus.subscribe("agent_updated", "agent:{agent_id}:*", Arc::new(cache.clone()))?;
//! assert_eq!(bus.publish("agent_updated", &[("agent_id", "42")])?, 2);
//! assert!(cache.get("agent:42:profile").is_none());
//! assert_eq!(cache.load_stats().ok, 1);
//! # Ok::<(), mpm_cache::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Time to live
//!
//! TTLs in memory are measured on a [`Clock`] with millisecond resolution, refreshed by one
//! background thread per process every millisecond: a get reads one atomic instead of the
//! system clock (which costs 30-38 ns on the machines we measured). An entry is never returned
//! after its deadline as seen by that clock, so it may live up to about one millisecond longer
//! than asked, never shorter. [`MemoryTier::len`] and [`MemoryTier::weight`] count live entries
//! only: a ledger of counts per distinct deadline (one record per millisecond in which entries
//! with a TTL were inserted, not one per entry, and no copy of any key) tells how many held
//! entries have expired, so the totals drop at the deadline without a walk over the tier. The
//! memory of an expired entry is reclaimed when it is looked up, when the policy evicts it, by
//! [`MemoryTier::purge_expired`] and by [`MemoryTier::spawn_reclaimer`]
//! ([`MemoryTier::held`] counts it until then). On disk, expiry is wall-clock time, so it
//! survives restarts.
//!
//! # Invalidation cost
//!
//! [`TieredCache`] keeps an ordered index of its L1 keys and a tag index, so
//! [`invalidate_prefix`](TieredCache::invalidate_prefix) and
//! [`invalidate_tag`](TieredCache::invalidate_tag) touch only the entries they remove. A
//! pattern that is a literal followed by `*` is a prefix; any other pattern scans the keys that
//! share its literal prefix (every key when it starts with a wildcard). The L2 answers the same
//! questions with range scans over its ordered keys and a tag table. The index costs one mutex
//! and one B-tree insert per write; reads never touch it. A load that was running while any
//! invalidation happened returns its value but does not cache it.
//!
//! # Durability and the storage engine
//!
//! With [`Durability::OnFlush`] (the default) a write is durable once [`DiskTier::flush`]
//! returns (the tier also flushes by itself every 1,024 writes and when dropped); with
//! [`Durability::EveryWrite`] every write is. Removals and invalidations are always durable
//! when they return. A process killed at any instant leaves a store that opens with every
//! flushed write, no invalidated key, and no torn value: the kill test runs a child writing
//! without pause, kills it with SIGKILL at a random instant, reopens and checks, 20 times in CI
//! (`MPM_CACHE_KILL_TRIALS=200` for more).
//!
//! The engine was chosen by measurement on 100,000 entries of 1 KiB (2-core machine, release
//! build, random reads):
//!
//! | | get p50 | get p99 | reopen | write (not synced) | durable write |
//! |---|---:|---:|---:|---:|---:|
//! | redb 4 | 4.0 µs | 36 µs | 0.6 ms | 32 µs | 3.6 ms |
//! | fjall 3 | 4.9 µs | 9.3 µs | 154 ms | 10 µs | n/m |
//! | one file per key, temp file + rename | 6.9 µs | 11 µs | 45 ms (listing only) | 74 µs | 3.3 ms |
//!
//! redb is the only one that reopens 100,000 entries within 100 ms, and its ordered keys give
//! prefix invalidation for free; plain files would also need an index file to know their keys
//! and tags at start-up. Through [`DiskTier`] (checksum and decoding included) a 1 KiB hit
//! measured p50 2.6 µs and p99 5.2 µs against 6.4 µs and 16.2 µs for `std::fs::read` of the
//! same bytes, and reopening 100,000 entries took 6.5-38 ms (`cargo bench -p mpm-benches
//! --bench cache`). Keys never become file names, so no key can escape the directory.
//!
//! # Errors
//!
//! Disk errors (a full disk, a read-only directory) come back as [`Error::Io`] or
//! [`Error::Storage`] from the calls that can see them ([`TieredCache::try_insert_with`],
//! [`DiskTier`] methods); [`TieredCache::insert`] counts them ([`DiskStats::write_errors`]) and
//! keeps the value in L1, and [`TieredCache::get`] treats an unreadable L2 as a miss.
//! Nothing panics on bad input: configuration out of range and malformed patterns are errors.
//!
//! # Hit ratio
//!
//! `cargo xtask trace` replays each trace single-threaded (get; on a miss, insert) with a fixed
//! hasher, at 1%, 5% and 10% of its distinct keys; every policy sees the same keys (the trace's
//! numbers as strings). "mpm" is the L1 of a [`TieredCache`] as configured by default, with a
//! default TTL, statistics, and a tag on every entry; "qc same" is bare quick_cache with the same
//! options; "qc" is quick_cache's defaults (`hot_allocation` 0.97, `ghost_allocation` 0.5).
//! mpm's options were chosen on these replays: [`DEFAULT_HOT_ALLOCATION`] 0.9 had the best mean
//! of 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95 and 0.97 (and again of 0.8 to 0.97 once the ghost
//! allocation was 1.0: 40.79% against 40.65% for 0.97), and [`DEFAULT_GHOST_ALLOCATION`] 1.0
//! the best mean of 0.25, 0.5, 0.75 and 1.0. Tags live in [`TieredCache`]'s index, outside the
//! policy, so they cannot change these figures (an xtask test checks that mpm and "qc same"
//! agree exactly). Hit ratios in percent:
//!
//! | trace | capacity | mpm | qc same | qc | moka | exact LRU |
//! |---|---:|---:|---:|---:|---:|---:|
//! | cache2k orm-busy | 763 | 76.14 | 76.14 | 71.24 | 52.14 | 77.03 |
//! | | 3,817 | 84.61 | 84.61 | 84.40 | 69.47 | 84.13 |
//! | | 7,635 | 88.18 | 88.18 | 88.15 | 77.30 | 88.01 |
//! | cache2k web07 | 205 | 42.70 | 42.70 | 40.75 | 33.94 | 39.17 |
//! | | 1,024 | 53.89 | 53.89 | 53.32 | 46.74 | 50.56 |
//! | | 2,048 | 58.36 | 58.36 | 57.95 | 51.17 | 55.66 |
//! | LIRS 2_pools | 99 | 47.03 | 47.03 | 47.18 | 48.56 | 21.77 |
//! | | 497 | 51.96 | 51.96 | 52.01 | 51.89 | 51.02 |
//! | | 994 | 54.40 | 54.40 | 54.41 | 54.31 | 54.38 |
//! | LIRS loop (looping scan) | 10 | 0.89 | 0.89 | 0.89 | 0.98 | 0.00 |
//! | | 51 | 4.44 | 4.44 | 4.84 | 5.01 | 0.00 |
//! | | 101 | 8.88 | 8.88 | 9.67 | 9.95 | 0.00 |
//! | LIRS multi1 | 26 | 7.98 | 7.98 | 6.09 | 18.00 | 1.03 |
//! | | 130 | 45.38 | 45.38 | 41.83 | 43.97 | 23.84 |
//! | | 261 | 49.41 | 49.41 | 49.41 | 47.39 | 43.45 |
//! | ARC P3 | 7,625 | 4.27 | 4.27 | 3.52 | 2.30 | 1.59 |
//! | | 38,127 | 19.71 | 19.71 | 14.89 | 21.59 | 4.33 |
//! | | 76,254 | 35.21 | 35.21 | 30.04 | 34.01 | 16.81 |
//!
//! mpm equals quick_cache with the same options in every cell. Outside the looping scan it is
//! below moka (whose TinyLFU admission wins there) in three cells: LIRS multi1 at 1% (by 10.0
//! points; multi1 mixes the looping `cs` trace with `cpp`), ARC P3 at 5% (1.9) and LIRS 2_pools
//! at 1% (1.5). No quick_cache options close them: over `hot_allocation` 0.5, 0.7, 0.8, 0.9,
//! 0.95, 0.97 and `ghost_allocation` 0.25, 0.5, 1.0 the best figures are 9.42 (multi1 at 1%,
//! 0.8/1.0), 19.96 (P3 at 5%, 0.97/1.0) and 47.22 (2_pools at 1%, 0.95/0.5). Reaching moka there
//! would take an admission filter in front of quick_cache, which would no longer be within half
//! a point of quick_cache with the same options elsewhere. We tried the simplest one, a
//! count-min sketch that admits a missed key into a full tier only once it has been seen 2 (or
//! 3) times recently: LIRS multi1 at 1% rose to 10.99% (15.53%), but web07 fell by 2.9 to 1.7
//! points (5.6 to 4.2) and 2_pools at 1% stayed at 47.9%, so it was not kept.
//!
//! # Speed
//!
//! Criterion, `cargo bench -p mpm-benches --bench cache -- --quick --noplot`, on a shared
//! 2-core machine (wall-clock figures move by 2x with the load; the quietest run is shown), and
//! instructions per operation from callgrind (deterministic; u64 keys and values, 1,024 hot
//! keys, 10,000-entry tier):
//!
//! | operation | mpm-cache | peer |
//! |---|---:|---:|
//! | L1 hot get, TTL on | 18.7-21.4 ns, 126 instructions | quick_cache 16.2-21.7 ns, 97 instructions (0.99-1.15x time, 1.30x instructions); moka 114-161 ns, 940 instructions (mpm 6.1-7.5x faster) |
//! | `TieredCache` hit with an L2 below, string keys | 26.4 ns | moka 131 ns (mpm 5.0x faster) |
//! | L1 insert into a full tier, TTL on | 943 instructions (the deadline ledger included) | quick_cache 467 instructions, no TTL (2.0x) |
//! | invalidate 1,000 of 1,000,000 by prefix | 0.25-0.8 ms | moka `invalidate_entries_if` 0.13-0.35 ms (lazy, see below) |
//! | invalidate 1,000 of 1,000,000 by tag | 0.37-1.0 ms | |
//! | L2 hit, 1 KiB value, per operation | p50 2.6 µs, p99 5.2 µs | `std::fs::read` p50 6.4 µs, p99 16.2 µs |
//! | reopen an L2 of 100,000 entries | 6.5-38 ms | listing 100,000 files: 56-74 ms |
//! | L1 memory per entry beyond key and value | 43.2 bytes filled once, 107.1 after churn (ghost records) | quick_cache 43.0 and 102.0 |
//!
//! Memory (counting allocator, 100,000 u64 entries, `tests/it/overhead.rs`): quick_cache keeps
//! each ghost record (a recently evicted key's hash, which lets a returning key straight into
//! the hot queue) in a slab slot the size of a whole entry, and the slab and table grow by
//! doubling. With `ghost_allocation` 0, 0.1 or 0.25 the L1 costs 49.8 bytes per entry after
//! churn; from 0.5 up the table doubles and it costs 102-107. The default stays at 1.0 because
//! the ghosts are worth it: at 0.25, LIRS multi1 at 5% drops from 45.38% to 37.62% (below moka's
//! 43.97%) and 2_pools at 1% from 47.03% to 46.91%. Set
//! [`MemoryTierBuilder::ghost_allocation`] to 0.25 where memory matters more than hit ratio.
//!
//! moka's predicate invalidation only registers the predicate and hides matching entries on
//! read; its figure is not the cost of removing them. The invalidation figures above 0.5 ms
//! were measured with the machine's load average at 5 to 10.
//!
//! # Feature flags
//!
//! None.
//!
//! It sits on floor 1 of the workspace: it depends on `mpm-metrics` and on no other floor-1
//! crate (see `docs/ARCHITECTURE.md`).
//!
//! Minimum supported Rust version: 1.95.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod bus;
mod clock;
mod disk;
mod error;
mod ledger;
mod memory;
mod pattern;
mod stats;
mod tier;
mod tiered;

pub use bus::{Invalidate, InvalidationBus};
pub use clock::{Clock, ManualClock, TICK};
pub use disk::{DiskTier, DiskTierBuilder, Durability};
pub use error::Error;
pub use memory::{
    DEFAULT_GHOST_ALLOCATION, DEFAULT_HOT_ALLOCATION, DefaultHashBuilder, MemoryTier,
    MemoryTierBuilder,
};
pub use pattern::Pattern;
pub use stats::{
    DiskStats, LoadSnapshot, LoadStats, RemovalCause, StatsSnapshot, TierSnapshot, TierStats,
};
pub use tier::{Tier, TierEntry};
pub use tiered::{EntryOptions, LoadFailure, TieredCache, TieredCacheBuilder, WarmProgress};
