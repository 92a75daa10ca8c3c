//! A shared Redis tier and cross-instance invalidation for `mpm-cache`.
//!
//! When one process is not enough, the instances of a service want to share what they
//! cached and to forget, all of them, what one of them invalidates. This crate adds both to
//! [`mpm_cache::TieredCache`], on the real Redis server through the redis crate:
//!
//! - [`RedisTier`] is a [`Tier`](mpm_cache::Tier): put it below the L1 and every instance
//!   reads what any of them wrote. Same entry codec and checksum as the disk tier, TTLs with
//!   `SET .. PX`, a key namespace, batched reads (`MGET`), a timeout on every call, and no
//!   waiting while the server is known to be down.
//! - [`RedisInvalidationBus`] carries invalidations by key, prefix, tag and glob on a Redis
//!   channel to every other instance's local caches, ignores its own, and clears the local
//!   caches when messages may have been lost. A write of this instance that raced another's
//!   invalidation is undone in Redis, and only while it still holds what this instance wrote:
//!   a late message never removes a newer value. Its staleness bound is documented and tested
//!   (see [`bus`](RedisInvalidationBus)).
//! - [`Redis`] is the connection they share: the redis crate's multiplexed, reconnecting
//!   `ConnectionManager`, driven by a runtime thread of the crate's own so that the
//!   synchronous tier can be called from any thread, inside a Tokio runtime or not.
//!
//! # Example
//!
//! Three lines wire a cache to Redis: the connection, the bus, the tier (which publishes its
//! removals on the bus); then the bus is told which local cache to keep fresh.
//!
//! ```no_run
//! use mpm_cache::TieredCache;
//! use mpm_cache_redis::{Redis, RedisInvalidationBus, RedisTier};
//!
//! let redis = Redis::open("redis://127.0.0.1:6379")?;
//! let bus = RedisInvalidationBus::builder(&redis, "profiles").build()?;
//! let tier = RedisTier::<String>::builder(&redis, "profiles").bus(&bus).build()?;
//! let cache: TieredCache<String> = TieredCache::builder().l2(tier).build()?;
//! bus.attach(cache.clone());
//!
//! cache.insert("agent:42:profile", "engineer".to_owned());
//! // Removed here, in Redis, and in every other instance's L1 within the staleness bound.
//! cache.invalidate_prefix("agent:42:")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The messages the bus sends are one line of text each; a malformed one is counted and
//! ignored:
//!
//! ```
//! use mpm_cache_redis::Invalidation;
//!
//! let what = Invalidation::Prefix("agent:42:".into());
//! assert_eq!(format!("{what:?}"), "Prefix(\"agent:42:\")");
//! ```
//!
//! # Metrics
//!
//! Given `.metrics(&registry, name)`, the tier registers `mpm_cache_redis_*` and the bus
//! `mpm_cache_bus_*`:
//!
#![doc = include_str!("metrics.md")]
//!
//! # Feature flags
//!
//! None.
//!
//! It sits on floor 2 of the workspace, an adapter on `mpm-cache` (as deadpool-redis is on
//! deadpool): `mpm-cache` knows nothing of Redis.
//!
//! Minimum supported Rust version: 1.95.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod bus;
mod error;
mod server;
mod stats;
mod tier;
mod wait;

pub use bus::local::LocalCache;
pub use bus::message::Invalidation;
pub use bus::{RedisInvalidationBus, RedisInvalidationBusBuilder};
pub use error::Error;
pub use server::{Redis, RedisBuilder};
pub use stats::BusSnapshot;
pub use tier::{RedisTier, RedisTierBuilder};
