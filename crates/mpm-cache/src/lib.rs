//! A tiered cache: an in-memory L1 with TTL on a coarse clock, invalidation and statistics.
//!
//! Services that load agent profiles and configuration again and again want a cache that is as
//! fast as the fastest concurrent map on a hit, honours time-to-live without reading the system
//! clock on every get, tells you why an entry left, and records its statistics into
//! `mpm-metrics`.
//!
//! - [`MemoryTier`]: the L1, on [quick_cache](https://docs.rs/quick_cache): entry and byte
//!   bounds (a weigher), per-entry TTL, a default TTL and entries that never expire (`None`
//!   means never), pinned entries, `shrink_to(fraction)`, an eviction listener told the
//!   [`RemovalCause`], and [`TierStats`].
//! - [`Clock`]: the coarse clock TTLs are measured on (one atomic load per read), or a manual
//!   clock for tests.
//!
//! # Example
//!
//! ```
//! use mpm_cache::{MemoryTier, RemovalCause};
//! use std::num::NonZeroUsize;
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! let removed = Arc::new(Mutex::new(Vec::new()));
//! let log = Arc::clone(&removed);
//! let tier: MemoryTier<String, String> = MemoryTier::builder()
//!     .max_entries(NonZeroUsize::new(1_000).unwrap())
//!     .default_ttl(Some(Duration::from_secs(300)))
//!     .eviction_listener(move |k: &String, _v: &String, cause| {
//!         log.lock().unwrap().push((k.clone(), cause));
//!     })
//!     .build()?;
//! tier.insert("agent:42:profile".into(), "engineer".into());
//! assert_eq!(tier.get("agent:42:profile").as_deref(), Some("engineer"));
//! tier.remove("agent:42:profile");
//! assert_eq!(removed.lock().unwrap()[0].1, RemovalCause::Invalidated);
//! assert_eq!(tier.stats_snapshot().hits, 1);
//! # Ok::<(), mpm_cache::Error>(())
//! ```
//!
//! # Time to live
//!
//! TTLs are measured on a [`Clock`] with millisecond resolution, refreshed by one background
//! thread per process every millisecond. An entry is never returned after its deadline as seen
//! by that clock, so it may live up to about one millisecond longer than asked, never shorter.
//! Expired entries are reclaimed when looked up, when the policy evicts them, and by
//! [`MemoryTier::purge_expired`].
//!
//! # Hit ratio
//!
//! `cargo xtask trace` replays each trace single-threaded (get; on a miss, insert) with a fixed
//! hasher, at 1%, 5% and 10% of its distinct keys. "mpm" is [`MemoryTier`] as configured by
//! default, with a default TTL, statistics and an eviction listener on; "qc 0.9" is bare
//! quick_cache with the same options; "qc" is quick_cache's defaults (`hot_allocation` 0.97).
//! [`DEFAULT_HOT_ALLOCATION`] is 0.9 because it had the best mean over these 18 cells among
//! 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95 and 0.97 (23.94% against 23.72% for 0.97). Hit ratios in
//! percent:
//!
//! | trace | capacity | mpm | qc 0.9 | qc | moka | exact LRU |
//! |---|---:|---:|---:|---:|---:|---:|
//! | cache2k orm-busy | 763 | 75.25 | 75.25 | 71.46 | 52.22 | 77.03 |
//! | | 3,817 | 84.63 | 84.63 | 84.39 | 69.38 | 84.13 |
//! | | 7,635 | 88.23 | 88.23 | 88.16 | 77.35 | 88.01 |
//! | cache2k web07 | 205 | 42.51 | 42.51 | 40.68 | 33.99 | 39.17 |
//! | | 1,024 | 53.80 | 53.80 | 53.36 | 46.67 | 50.56 |
//! | | 2,048 | 58.28 | 58.28 | 58.05 | 51.28 | 55.66 |
//! | LIRS 2_pools | 99 | 48.24 | 48.24 | 48.46 | 48.42 | 21.77 |
//! | | 497 | 51.99 | 51.99 | 52.00 | 51.92 | 51.02 |
//! | | 994 | 54.40 | 54.40 | 54.37 | 54.36 | 54.38 |
//! | LIRS loop (looping scan) | 10 | 0.89 | 0.89 | 0.89 | 0.98 | 0.00 |
//! | | 51 | 4.44 | 4.44 | 4.84 | 5.02 | 0.00 |
//! | | 101 | 8.88 | 8.88 | 9.67 | 9.93 | 0.00 |
//! | LIRS multi1 | 26 | 5.69 | 5.69 | 6.09 | 18.28 | 1.03 |
//! | | 130 | 41.86 | 41.86 | 41.31 | 43.93 | 23.84 |
//! | | 261 | 49.05 | 49.05 | 49.38 | 48.13 | 43.45 |
//! | ARC P3 | 7,625 | 3.67 | 3.67 | 3.50 | 2.55 | 1.59 |
//! | | 38,127 | 15.83 | 15.83 | 14.91 | 21.42 | 4.33 |
//! | | 76,254 | 30.58 | 30.58 | 30.02 | 33.61 | 16.81 |
//!
//! mpm equals quick_cache with the same options in every cell. It is below moka on LIRS multi1
//! at 1% and 5% and on ARC P3 at 5% and 10% (moka's TinyLFU admission wins there), and on the
//! looping scan.
//!
//! # Feature flags
//!
//! None yet.
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
mod memory;
mod pattern;
mod second;
mod stats;
mod tiered;

pub use bus::{Invalidate, InvalidationBus};
pub use clock::{Clock, ManualClock, TICK};
pub use disk::{DiskStats, DiskTier, DiskTierBuilder, Durability};
pub use error::Error;
pub use memory::{DEFAULT_HOT_ALLOCATION, DefaultHashBuilder, MemoryTier, MemoryTierBuilder};
pub use pattern::Pattern;
pub use stats::{RemovalCause, StatsSnapshot, TierStats};
pub use tiered::{EntryOptions, TieredCache, TieredCacheBuilder, WarmProgress};
