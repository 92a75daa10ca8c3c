//! The mpm facade: every mpm crate under one roof.
//!
//! Depend on `mpm-core` to get all of mpm with one line, or on the crates one by one. Each
//! crate is re-exported under a short name:
//!
//! | module | crate | what it is for |
//! |---|---|---|
//! | [`metrics`] | `mpm-metrics` | counters, gauges, histograms, timers, export, budgets |
//! | [`lazy`] | `mpm-lazy` | lazy values, registries, hot swap, lazy configuration |
//! | [`cache`] | `mpm-cache` | the tiered cache |
//! | [`pool`] | `mpm-pool` | resource and connection pools |
//! | [`memory_opt`] | `mpm-memory-opt` | agent memory file optimization |
//! | [`batch`] | `mpm-batch` | bounded-concurrency execution and batching |
//!
//! `mpm-core` holds no algorithms: logic lives in the crates below it.
//!
//! ```
//! use mpm_core::metrics::Registry;
//!
//! let registry = Registry::default();
//! registry.counter("started_total", &[])?.inc();
//! assert_eq!(registry.snapshot().get("started_total", &[]).unwrap().as_f64(), 1.0);
//! # Ok::<(), mpm_core::metrics::Error>(())
//! ```
//!
//! # Features
//!
//! - `tracing` (default): forwards to `mpm-metrics/tracing`.
//! - `recorder`: forwards to `mpm-metrics/recorder`.
//! - `postgres`, `redis`, `deadpool`, `bb8`: forward to the `mpm-pool` features of those names.
//!
//! Minimum supported Rust version: 1.95.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

pub use mpm_batch as batch;
pub use mpm_cache as cache;
pub use mpm_lazy as lazy;
pub use mpm_memory_opt as memory_opt;
pub use mpm_metrics as metrics;
pub use mpm_pool as pool;
