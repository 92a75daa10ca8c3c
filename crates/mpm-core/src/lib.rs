//! The mpm facade: every mpm crate under one roof, with one metrics registry wired through
//! them.
//!
//! A service depends on `mpm-core` alone and builds its parts from one [`Mpm`] handle. `Mpm`
//! owns a [`Registry`] and hands it, with the name you give, to every cache, disk tier, pool,
//! keyed pool, breaker, lazy value, lazy registry, configuration, optimizer and batcher it
//! starts a builder for; one [`render_prometheus`](Mpm::render_prometheus) (or one scrape of
//! [`serve_metrics`](Mpm::serve_metrics)) then shows the whole service, with gauges fresh at
//! scrape time. `mpm-core` holds no algorithms: each method returns the component crate's own
//! builder, so everything those crates document applies unchanged.
//!
//! # A small agent service
//!
//! Agent profiles in a tiered cache (memory over a disk store), loaded through a connection
//! pool, the service's settings read on first use, dashboard events sent in batches, and the
//! figures of all of them in one exposition:
//!
//! ```
//! use std::collections::HashMap;
//! use std::num::NonZeroUsize;
//! use std::time::Duration;
//!
//! use mpm_core::prelude::*;
//! use mpm_core::pool::manager;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let mpm = Mpm::default();
//! let dir = tempfile::tempdir()?;
//!
//! // Settings: the file is opened now, each section parsed when first asked for.
//! let path = dir.path().join("service.json");
//! std::fs::write(&path, r#"{ "agents": { "max_active": 4 } }"#)?;
//! let settings = mpm.config("service", &path).build()?;
//! let limits = settings.section::<HashMap<String, usize>>("agents")?;
//!
//! // A pool of (here, pretend) database connections.
//! let db = mpm
//!     .pool("db", manager::from_fns(|| async { Ok::<_, std::io::Error>("conn") }, |_| true))
//!     .max_size(NonZeroUsize::new(limits["max_active"]).unwrap())
//!     .build()
//!     .await?;
//!
//! // Agent profiles: memory first, then the disk store, then the database.
//! let profiles: TieredCache<String> = mpm
//!     .cache("profiles")
//!     .l1(MemoryTier::builder().default_ttl(Some(Duration::from_secs(300))))
//!     .l2(mpm.disk_tier("profiles", dir.path().join("profiles")).open()?)
//!     .build()?;
//!
//! // Dashboard events, handed over ten at a time (or every 50 ms).
//! let events = mpm
//!     .batcher("dashboard", NonZeroUsize::new(1024).unwrap(), Overflow::Wait)
//!     .build(|batch: Batch<&str, String>| async move {
//!         assert!(!batch.items().is_empty());
//!         Ok::<_, std::io::Error>(())
//!     })?;
//!
//! for agent in ["research", "engineer", "qa", "research"] {
//!     let profile = profiles
//!         .get_or_load(&format!("agent:{agent}"), || async {
//!             let conn = db.get().await?;
//!             Ok::<_, mpm_core::pool::Error<_>>(format!("{agent}, loaded over {}", *conn))
//!         })
//!         .await?;
//!     events.push("agent_started", profile).await?;
//! }
//! events.shutdown().await?;
//!
//! // One exposition, current without calling any `stats()`.
//! let text = mpm.render_prometheus();
//! assert!(text.contains("mpm_cache_misses_total{name=\"profiles\"} 3\n"));
//! assert!(text.contains("mpm_cache_hits_total{name=\"profiles\",tier=\"l1\"} 1\n"));
//! assert!(text.contains("mpm_cache_entries{name=\"profiles\",tier=\"l1\"} 3\n"));
//! assert!(text.contains("mpm_cache_disk_entries{name=\"profiles\"} 3\n"));
//! assert!(text.contains("mpm_pool_acquire_seconds_count{name=\"db\"} 3\n"));
//! assert!(text.contains("mpm_batch_items_delivered_total{name=\"dashboard\"} 4\n"));
//! assert!(text.contains("# HELP mpm_lazy_config_sections_parsed "));
//!
//! // Limits a CI job can hold the service to.
//! let budgets = [Budget::duration_at_most("mpm_pool_acquire_seconds", Statistic::P99, Duration::from_secs(1))
//!     .with_labels(&[("name", "db")])];
//! assert!(mpm.check_budgets(&budgets).passed());
//!
//! // A second cache called "profiles" would merge into the first one's series: refused.
//! assert!(mpm.cache::<String>("profiles").build().is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! To let Prometheus scrape the same figures, `mpm.serve_metrics(addr).await?` (feature
//! `http`) serves `/metrics`, `/metrics.json` and `/health`; [`Mpm::metrics_server`] adds a
//! bearer token and limits.
//!
//! # One convention
//!
//! Every method of [`Mpm`] that starts a component takes the instance name first, then the
//! arguments of the crate's own `builder(..)`, and returns that builder with
//! `.metrics(&registry, name)` already called (the [`mpm_metrics::contract`]). The name is
//! claimed at `build()`: a second component of the same kind and name in one registry is an
//! error there, never a silent merge of two series. Every series carries the label
//! `name="<name>"`; the tables of each crate's metrics are in its module below.
//!
//! | [`Mpm`] method | returns | series |
//! |---|---|---|
//! | [`cache::<V>(name)`](Mpm::cache) | [`TieredCacheBuilder<V>`] | `mpm_cache_*` (and the L2's, such as `mpm_cache_disk_*`) |
//! | [`memory_tier::<K, V>(name)`](Mpm::memory_tier) | [`MemoryTierBuilder<K, V>`] | `mpm_cache_*{tier="l1"}` |
//! | [`disk_tier(name, dir)`](Mpm::disk_tier) | [`cache::DiskTierBuilder`] | `mpm_cache_disk_*` |
//! | [`pool(name, manager)`](Mpm::pool) | [`pool::Builder<M>`] | `mpm_pool_*` |
//! | [`keyed_pool(name, manager)`](Mpm::keyed_pool) | [`pool::keyed::KeyedBuilder<K, M>`] | `mpm_pool_keyed_*` |
//! | [`breaker(name)`](Mpm::breaker) | [`pool::BreakerBuilder`] | `mpm_pool_breaker_*` |
//! | [`lazy(name, init)`](Mpm::lazy) | [`lazy::LazyBuilder`] | `mpm_lazy_*` |
//! | [`async_lazy(name, init)`](Mpm::async_lazy) | [`lazy::AsyncLazyBuilder`] | `mpm_lazy_*` |
//! | [`lazy_registry(name)`](Mpm::lazy_registry) | [`lazy::RegistryBuilder`] | `mpm_lazy_registry_*` |
//! | [`config(name, path)`](Mpm::config) | [`lazy::ConfigBuilder`] | `mpm_lazy_config_*` |
//! | [`optimizer(name, options)`](Mpm::optimizer) | [`memory_opt::OptimizerBuilder`] | `mpm_memory_opt_*` |
//! | [`batcher::<K, T>(name, capacity, overflow)`](Mpm::batcher) | [`batch::BatcherBuilder<K, T>`] | `mpm_batch_*` |
//! | `redis_tier::<V>(name, redis, namespace)` (`redis-tier`) | `cache_redis::RedisTierBuilder<V>` | `mpm_cache_redis_*` |
//! | `redis_bus(name, redis, namespace)` (`redis-tier`) | `cache_redis::RedisInvalidationBusBuilder` | `mpm_cache_bus_*` |
//!
//! Reading the registry: [`Mpm::snapshot`], [`Mpm::render_prometheus`],
//! [`Mpm::check_budgets`], [`Mpm::serve_metrics`] and [`Mpm::metrics_server`]. An existing
//! registry is shared with [`MpmBuilder::registry`].
//!
//! # The crates
//!
//! | module | crate | what it is for |
//! |---|---|---|
//! | [`metrics`] | `mpm-metrics` | counters, gauges, histograms, timers, export, budgets, the HTTP endpoint |
//! | [`lazy`] | `mpm-lazy` | lazy values, registries, hot swap, lazy configuration |
//! | [`cache`] | `mpm-cache` | the tiered cache |
//! | `cache_redis` (feature `redis-tier`) | `mpm-cache-redis` | a shared Redis tier, invalidation across instances |
//! | [`pool`] | `mpm-pool` | resource and connection pools, circuit breaker |
//! | [`memory_opt`] | `mpm-memory-opt` | agent memory file optimization |
//! | [`batch`] | `mpm-batch` | bounded-concurrency execution and batching |
//!
//! The main types are also at the root of this crate, and [`prelude`] brings the ones a
//! service uses most (and the extension traits) into scope.
//!
//! # Features
//!
//! On by default: `tracing`, `http`, `disk`, `budget-toml`, `config-toml`, `config-yaml`.
//!
//! - `tracing`: `metrics::MetricsLayer`, span durations into histograms.
//! - `http`: [`Mpm::serve_metrics`] and [`Mpm::metrics_server`] (tokio and hyper). On by
//!   default because a service built with the facade is meant to be scraped; turn it off to
//!   export another way (the text of [`Mpm::render_prometheus`]) without hyper.
//! - `disk`: the disk tier, `cache::DiskTier` and [`Mpm::disk_tier`] (redb).
//! - `budget-toml`: `metrics::Budget::parse_toml` (the toml crate).
//! - `config-toml`, `config-yaml`: [`LazyConfig`] reads TOML or YAML files (JSON is always
//!   read).
//! - `recorder`: `metrics::MetricsRecorder`, a `metrics::Recorder` on the registry.
//! - `postgres`, `redis`, `sqlite`, `deadpool`, `bb8`: the `mpm-pool` managers and adapters of
//!   those names.
//! - `redis-tier`: `mpm-cache-redis` as `cache_redis`, with `Mpm::redis_tier` and
//!   `Mpm::redis_bus`.
//!
//! To depend on less, turn the defaults off and name what you use; without defaults the facade
//! builds none of redb, toml, serde_norway, hyper or tracing-subscriber (CI checks this):
//!
//! ```toml
//! [dependencies]
//! mpm-core = { version = "0.1", default-features = false, features = ["config-toml", "postgres"] }
//! ```
//!
//! The crates underneath work the same way when used one by one (`mpm-cache` without `disk`,
//! `mpm-lazy` without `toml`/`yaml`, `mpm-metrics` without `tracing`/`toml`).
//!
//! Minimum supported Rust version: 1.95.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod mpm;

pub use mpm::{Mpm, MpmBuilder};

#[doc(inline)]
pub use mpm_batch as batch;
#[doc(inline)]
pub use mpm_cache as cache;
#[cfg(feature = "redis-tier")]
#[doc(inline)]
pub use mpm_cache_redis as cache_redis;
#[doc(inline)]
pub use mpm_lazy as lazy;
#[doc(inline)]
pub use mpm_memory_opt as memory_opt;
#[doc(inline)]
pub use mpm_metrics as metrics;
#[doc(inline)]
pub use mpm_pool as pool;

#[doc(inline)]
pub use mpm_batch::{Batch, Batcher, BatcherBuilder, Overflow, run_bounded};
#[cfg(feature = "disk")]
#[doc(inline)]
pub use mpm_cache::{DiskTier, DiskTierBuilder};
#[doc(inline)]
pub use mpm_cache::{
    EntryOptions, InvalidationBus, MemoryTier, MemoryTierBuilder, Tier, TieredCache,
    TieredCacheBuilder,
};
#[doc(inline)]
pub use mpm_lazy::{AsyncLazy, Lazy, LazyConfig, LazyRegistry, Swap};
#[doc(inline)]
pub use mpm_memory_opt::{Optimizer, Options};
#[doc(inline)]
pub use mpm_metrics::{Budget, BudgetReport, Registry, Snapshot, Statistic};
#[doc(inline)]
pub use mpm_pool::keyed::KeyedPool;
#[doc(inline)]
pub use mpm_pool::{CircuitBreaker, Manager, Pool};

/// The types a service built with [`Mpm`] uses most, and the extension traits:
/// `use mpm_core::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "disk")]
    #[doc(no_inline)]
    pub use crate::DiskTier;
    #[doc(no_inline)]
    pub use crate::{
        AsyncLazy, Batch, Batcher, Budget, CircuitBreaker, KeyedPool, Lazy, LazyConfig,
        LazyRegistry, Manager, MemoryTier, Mpm, Optimizer, Options, Overflow, Pool, Registry,
        Statistic, Tier, TieredCache,
    };
    #[doc(no_inline)]
    pub use mpm_pool::keyed::KeyedManager;
}
