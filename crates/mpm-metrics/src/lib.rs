//! Lock-free counters, gauges and histograms, scoped timers, Prometheus and JSON export, a
//! `tracing` layer and performance budgets: the floor every other mpm crate reports into.
//!
//! Recording is one plain load and store on a handle you resolve once; everything else
//! (percentiles, exposition, budgets) happens when the registry is read. Components report
//! through a [`Scope`], which names their metrics by the [`contract`] every mpm crate follows,
//! and keep their gauges fresh with collectors that run at every scrape.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicI64, Ordering};
//! use mpm_metrics::{Exposition, Registry, Unit};
//!
//! let registry = Registry::default();
//! let scope = registry.scope("cache", "profiles")?;
//! let hits = scope.counter("hits_total", "Lookups answered.", &[("tier", "l1")])?;
//! let load = scope.histogram("load_seconds", "Time in the loader.", Unit::Seconds, &[])?;
//! let entries = Arc::new(AtomicI64::new(0));
//! let gauge = scope.int_gauge("entries", "Entries held, at scrape time.", &[])?;
//! scope.collector(&entries, move |n| gauge.set(n.load(Ordering::Relaxed)));
//!
//! hits.inc();
//! load.record_duration(std::time::Duration::from_millis(2));
//! entries.store(20, Ordering::Relaxed);
//!
//! let text = Exposition::parse(&registry.render_prometheus()).unwrap();
//! assert_eq!(text.value("mpm_cache_entries", &[("name", "profiles")]), Some(20.0));
//! assert_eq!(text.value("mpm_cache_load_seconds_count", &[("name", "profiles")]), Some(1.0));
//! # Ok::<(), mpm_metrics::Error>(())
//! ```
//!
//! # Reference
//!
//! - [`Counter`], [`Gauge`] (float), [`IntGauge`]: one atomic per update ([`counter`] module:
//!   per-thread shards in a dense per-registry arena, summed by a render in one sweep).
//! - [`Histogram`]: log-linear, 1% bound on values from 1 to 2^44, exact counts, exposed at a
//!   fixed [`Buckets`] layout per unit.
//! - [`Registry`]: metrics by name and labels, a cap on label sets per metric, [`Scope`]s
//!   claimed once per (component, instance), collectors ([`Registry::add_collector`]),
//!   [`Snapshot`] (serde, JSON) and [`Registry::render_prometheus`] (`# HELP` and `# TYPE` on
//!   every family).
//! - [`contract`]: the naming and registration rules, and [`contract::check_metric_table`],
//!   which checks a crate's table of metrics against an [`Exposition`].
//! - [`Timer`]: a guard that records duration, errors and panics, and optionally the allocation
//!   delta from the opt-in [`CountingAllocator`].
//! - [`Budget`] and [`check_budgets`]: limits on p50/p99/max/mean/count/rate.
//! - `http` (feature): `/metrics`, `/metrics.json` and `/health` over HTTP.
//!
//! Invalid names are refused with [`Error::InvalidMetricName`] and [`Error::InvalidLabelName`]
//! (the tracing layer and the `metrics` recorder sanitise instead, [`sanitize_metric_name`]);
//! NaN and infinite gauge values and NaN, infinite or negative [`Histogram::record_f64`] values
//! are refused and counted. Figures: `cargo bench -p mpm-benches --bench metrics`.
//!
//! # Features
//!
//! - `tracing` (default): `MetricsLayer`, span durations into histograms.
//! - `toml` (default): [`Budget::parse_toml`], budgets from a TOML file.
//! - `recorder`: `MetricsRecorder`, a `metrics::Recorder`.
//! - `http`: `http::serve` and `http::MetricsServer`, on tokio and hyper.
//! - `strict-assertions`: expensive internal checks, for tests.
//!
//! # Unsafe code
//!
//! [`CountingAllocator`] (implementing `GlobalAlloc` requires it, and it forwards every call
//! unchanged) and one prefetch hint, which the renderer and the collector run use (`std::arch`
//! marks it unsafe; it cannot fault). Everything else is safe code.
//!
//! Minimum supported Rust version: 1.95.
#![doc(test(attr(deny(warnings))))]

mod alloc;
pub mod buckets;
mod budget;
mod collector;
pub mod contract;
pub mod counter;
mod error;
mod exposition;
mod gauge;
pub mod heartbeat;
pub mod histogram;
#[cfg(feature = "http")]
pub mod http;
mod lines;
mod name;
mod prefetch;
mod prometheus;
#[cfg(feature = "recorder")]
mod recorder;
mod registry;
mod scope;
mod snapshot;
mod timer;
#[cfg(feature = "tracing")]
mod tracing_layer;

pub use alloc::{AllocStats, CountingAllocator, thread_stats};
pub use buckets::Buckets;
pub use budget::{Bound, Budget, BudgetReport, BudgetResult, Statistic, check_budgets};
pub use collector::{COLLECTOR_PANICS, CollectorId};
pub use counter::Counter;
pub use error::Error;
pub use exposition::{ExposedFamily, Exposition, Sample};
pub use gauge::{Gauge, IntGauge};
pub use histogram::{Histogram, HistogramSnapshot};
pub use name::{
    sanitize_label_name, sanitize_metric_name, validate_label_name, validate_metric_name,
};
pub use prometheus::{DEFAULT_HELP, PROMETHEUS_CONTENT_TYPE};
#[cfg(feature = "recorder")]
pub use recorder::MetricsRecorder;
pub use registry::{
    DEFAULT_MAX_SERIES, Kind, OVERFLOW_LABELS, Registry, RegistryBuilder, TimerId, Unit,
};
pub use scope::{INSTANCE_LABEL, Scope};
pub use snapshot::{MetricSnapshot, SeriesSnapshot, Snapshot, Value};
pub use timer::{Timer, TimerGuard};
#[cfg(feature = "tracing")]
pub use tracing_layer::MetricsLayer;
