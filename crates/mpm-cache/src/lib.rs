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
mod error;
mod memory;
mod pattern;
mod second;
mod stats;
mod tiered;

pub use bus::{Invalidate, InvalidationBus};
pub use clock::{Clock, ManualClock, TICK};
pub use error::Error;
pub use memory::{DEFAULT_HOT_ALLOCATION, DefaultHashBuilder, MemoryTier, MemoryTierBuilder};
pub use pattern::Pattern;
pub use stats::{RemovalCause, StatsSnapshot, TierStats};
pub use tiered::{EntryOptions, TieredCache, TieredCacheBuilder, WarmProgress};
