//! A tiered cache: an in-memory L1 with TTL, a durable L2 (a disk tier or any [`Tier`]),
//! single-flight loading, invalidation by key, prefix, tag, pattern and event, warming, and
//! statistics.
//!
//! Services that load agent profiles and configuration again and again want a cache that is
//! as fast as the fastest concurrent map on a hit, honours time-to-live without reading the
//! system clock on every get, survives restarts, loads each missing value once however many
//! tasks ask for it, and forgets exactly what an event says is stale.
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
//! # The parts
//!
//! - [`TieredCache`] is what a service holds: [`get`](TieredCache::get) reads L1, then L2
//!   (promoting hits); [`get_or_load`](TieredCache::get_or_load) adds one loader per key;
//!   writes go through both tiers; invalidation by key, prefix, tag and [`Pattern`] reaches
//!   both; entries may depend on files; [`warm`](TieredCache::warm) and
//!   [`warm_from_l2`](TieredCache::warm_from_l2) fill it. Built with [`TieredCacheBuilder`]
//!   from a [`MemoryTierBuilder`] and a [`Tier`].
//! - [`MemoryTier`] is the L1, a sharded table with quick_cache's eviction policy and compact
//!   ghost records: entry and byte bounds, per-entry TTL, pins, `shrink_to`, an eviction
//!   listener told the [`RemovalCause`].
//! - [`Tier`] is what a level below the L1 does; [`DiskTier`] is one, on
//!   [redb](https://docs.rs/redb). [`record`] is the entry codec it stores (expiry, tags and a
//!   checksum over the key and the bytes), public so another tier can store the same bytes.
//! - [`InvalidationBus`] maps events such as `agent_updated { agent_id }` to patterns such as
//!   `agent:{agent_id}:*`.
//! - [`TierStats`], [`LoadStats`] and [`DiskStats`] hold the counters behind `stats()`
//!   snapshots; [`Clock`] is the coarse clock TTLs run on (or a manual one for tests).
//!
//! # Time to live
//!
//! TTLs in memory run on a [`Clock`] with millisecond resolution, refreshed every [`TICK`]
//! (2 ms) by one background thread per process, mpm-metrics' heartbeat, which parks once no
//! clock uses it: a get reads one atomic instead of the system clock. An entry is never
//! returned after its deadline as that clock sees it, so it may live up to about a tick
//! longer than asked, never shorter. [`MemoryTier::len`] and [`MemoryTier::weight`] count live
//! entries only (a ledger of counts per deadline, no walk); the memory of an expired entry is
//! reclaimed on lookup, by eviction, by [`MemoryTier::purge_expired`] or by
//! [`MemoryTier::spawn_reclaimer`]. On disk, expiry is wall-clock time, so it survives restarts.
//!
//! # Invalidation
//!
//! [`TieredCache`] keeps an ordered index of its L1 keys and a tag index, so
//! [`invalidate_prefix`](TieredCache::invalidate_prefix) and
//! [`invalidate_tag`](TieredCache::invalidate_tag) touch only the entries they remove; a
//! pattern that is not a plain prefix scans the keys sharing its literal prefix. The disk tier
//! answers the same questions with range scans over its ordered keys and a tag table. A load
//! that was running while any invalidation happened returns its value but does not cache it:
//! the decision is taken before any tier is written.
//!
//! # When the L2 fails
//!
//! An L2 that fails a read is a miss; a tier that panics is treated as one that failed. A
//! failed removal is reported by the call that asked for it, and still holds: the removal is
//! recorded before the L2 is asked, every L2 read is checked against what is recorded, and
//! later writes, invalidations and [`flush`](TieredCache::flush) apply it; the record is
//! dropped once the L2 has applied everything. A failed write is counted and reported by
//! [`try_insert_with`](TieredCache::try_insert_with); the L1 keeps the value, and the key's
//! entry in the L2 (an older value, perhaps) is removed or, if that fails too, recorded as a
//! removal the same way. So within the process an invalidated or overwritten value never comes
//! back. The record is in memory: a process that stops while [`flush`](TieredCache::flush)
//! still fails leaves those entries on disk.
//!
//! An L2 that keeps failing is bypassed, not waited on ([`BypassPolicy`], for any [`Tier`]):
//! after 5 failed calls in a row (an error, or a call slower than 250 ms), the cache stops
//! calling it for 1 s and serves from the L1 and the loader; writes and removals meanwhile are
//! recorded as removals the L2 owes, with the masking above, and report
//! [`Error::TierBypassed`]. Then one call probes the tier: success puts it back in service,
//! failure starts another cool-down. While one call has been running for longer than 250 ms
//! with none ending, other callers skip the tier too, without waiting for it. So a caller
//! waits on a failing tier only for the calls that detect the failure and for one probe per
//! cool-down, each bounded by the tier's own timeout (the [`Tier`] contract), and never for a
//! call that is already stuck. `mpm_cache_bypassed` and `mpm_cache_errors_total` show it.
//!
//! # A store file that may hold anything
//!
//! [`DiskTier`] checksums every entry over its key and its bytes: a damaged entry is a miss
//! counted in [`DiskStats::corrupt`], never another key's value. The storage engine trusts
//! its file and panics on some damaged pages, so every call into it runs under
//! `catch_unwind`: a panic, a damaged page or a truncated file moves the file aside, counts it
//! in [`DiskStats::corrupt_files`], and the tier carries on with an empty store (a cache may
//! always start empty). [`DiskTierBuilder::verify_on_open`] finds damage at open instead, at
//! the cost of reading the whole file. A test mutates a store 1,020 ways (`tests/it/damage.rs`).
//!
//! # Durability
//!
//! With [`Durability::OnFlush`] (the default) a write is durable once [`DiskTier::flush`]
//! returns (the tier also flushes itself when dropped, and every 1,024 writes: with the
//! write-behind buffer, in the background once 512 writes are not durable); with
//! [`Durability::EveryWrite`] every write is. Removals are durable when they return. A write
//! does not wait for a commit: it lands in a bounded in-memory buffer ([`WriteBehind`]) that
//! reads consult first and that a background thread commits in one transaction per batch;
//! removals, flushes and a writer that finds the buffer full commit it with them, and a
//! failure of the background commit is returned by the next write, removal or flush. A process
//! killed at any instant leaves a store that opens with every flushed write, no invalidated
//! key and no torn value (`tests/it/kill.rs`; `MPM_CACHE_KILL_TRIALS=200` for more trials).
//!
//! # Metrics
//!
//! The cache follows [`mpm_metrics::contract`]: `.metrics(&registry, name)` on
//! [`TieredCacheBuilder`], [`MemoryTierBuilder`] or [`DiskTierBuilder`] stores the pair, and
//! `build()` (`open()`) claims the name, failing with [`Error::Metrics`] if another cache of
//! the same kind holds it. One call on the tiered cache's builder covers its L1 and its L2
//! (the L2 reports what only it sees through [`Tier::register_metrics`]). The `stats()`
//! snapshots read the same counters, with or without a registry.
//!
//! ```
//! use mpm_cache::{DiskTier, TieredCache};
//! use mpm_metrics::Registry;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let registry = Registry::default();
//! let dir = tempfile::tempdir().unwrap();
//! let cache: TieredCache<String> = TieredCache::builder()
//!     .l2(DiskTier::builder(dir.path()).open()?)
//!     .metrics(&registry, "profiles")
//!     .build()?;
//! cache.get_or_load("agent:1", || async { Ok::<_, std::io::Error>("p".to_owned()) }).await?;
//!
//! let text = registry.render_prometheus();
//! // One lookup, one miss (not one per tier); the gauges are current without a stats() call.
//! assert!(text.contains("mpm_cache_misses_total{name=\"profiles\"} 1\n"));
//! assert!(text.contains("mpm_cache_entries{name=\"profiles\",tier=\"l1\"} 1\n"));
//! assert!(text.contains("mpm_cache_disk_entries{name=\"profiles\"} 1\n"));
//! // A second cache called "profiles" fails at build.
//! assert!(TieredCache::<String>::builder().metrics(&registry, "profiles").build().is_err());
//! # Ok::<(), mpm_cache::Error>(())
//! # }).unwrap();
//! ```
//!
#![doc = include_str!("metrics.md")]
//!
//! # Figures
//!
//! Speed beside quick_cache, moka and `std::fs` comes from `cargo xtask bench cache`; hit
//! ratios on real traces beside quick_cache, moka and exact LRU from `cargo xtask trace`. The
//! L1's options ([`DEFAULT_HOT_ALLOCATION`], [`DEFAULT_GHOST_ALLOCATION`]) were chosen on those
//! replays. The default [`Admission::Adaptive`] ([`MemoryTierBuilder::admission`]) adds a
//! frequency filter that sampled shadow caches switch on for loops and scans and off for
//! recency-heavy workloads; the replays show it as `mpm`, and [`Admission::All`] (every insert
//! enters, quick_cache's policy) as `mpm-all`.
//!
//! The L1's table is its own: quick_cache's policy (S3-FIFO-like: a cold ring, a hot ring,
//! ghost records of keys evicted lately), with the ghost records kept as 16-bit fingerprints
//! in four-way buckets (about two bytes each) instead of a slot of the entry slab each, and
//! the weight and pin of an entry kept in it, so that no user code runs under a shard's lock.
//! An insert into a full tier touches less memory than quick_cache's at the same ghost
//! allocation, and an entry costs about half as much memory after churn. A hit still runs
//! more instructions than a bare quick_cache's: the TTL check on a coarse clock, the
//! statistics and, by default, the adaptive admission's sketch and sampled hits.
//! `docs/PERFORMANCE.md` gives the ratios from the last benchmark run (the L1 groups) and the
//! instruction counts `cargo xtask budgets cache` checks.
//!
//! # Feature flags
//!
//! - `disk` (default): the disk tier, [`DiskTier`] with [`DiskTierBuilder`], [`Durability`],
//!   [`WriteBehind`] and [`DiskStats`], on redb. Without it the crate has no redb dependency:
//!   the L1, the [`Tier`] boundary, the [`record`] codec and any other tier still work. The
//!   examples in these docs use the disk tier.
//!
//! It sits on floor 1 of the workspace: it depends on `mpm-metrics` and on no other floor-1
//! crate (see `docs/ARCHITECTURE.md`).
//!
//! Minimum supported Rust version: 1.95.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod admission;
mod bus;
mod clock;
#[cfg(feature = "disk")]
mod disk;
mod error;
mod ledger;
mod memory;
mod metrics;
mod pattern;
pub mod record;
mod stats;
mod table;
mod tier;
mod tiered;

pub use admission::Admission;
pub use bus::{Invalidate, InvalidationBus};
pub use clock::{Clock, ManualClock, TICK};
#[cfg(feature = "disk")]
pub use disk::{DiskTier, DiskTierBuilder, Durability, WriteBehind};
/// How a borrowed form of a key (a `&str` for a `String` key, say) is compared with stored
/// keys in lookups: the `equivalent` crate's trait, as hashbrown and quick_cache use it.
pub use equivalent::Equivalent;
pub use error::Error;
pub use memory::{
    DEFAULT_GHOST_ALLOCATION, DEFAULT_HOT_ALLOCATION, DefaultHashBuilder, MemoryTier,
    MemoryTierBuilder,
};
pub use pattern::Pattern;
#[cfg(feature = "disk")]
pub use stats::DiskStats;
pub use stats::{LoadSnapshot, LoadStats, RemovalCause, StatsSnapshot, TierSnapshot, TierStats};
pub use tier::{Tier, TierEntry};
pub use tiered::{
    BypassPolicy, EntryOptions, LoadFailure, TieredCache, TieredCacheBuilder, WarmProgress,
};
