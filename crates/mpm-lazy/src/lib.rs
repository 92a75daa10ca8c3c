//! Lazy values, lazy service registries, hot-swappable handles and configuration parsed on demand.
//!
//! Agent-orchestration services start faster when expensive things (profile scans, database
//! clients, configuration sections) are built on first use instead of at start-up. This crate
//! gives the building blocks, each closing a gap of the usual tools:
//!
//! - [`Lazy`] and [`AsyncLazy`]: a value built on first use, like `std::sync::LazyLock` or
//!   tokio's `OnceCell`, but a failed or panicking or cancelled initialization is retried by the
//!   next caller (with an optional [`Backoff`]) instead of poisoning the value; `reset()` works
//!   through `&self`; `get()` never initializes; with [`Lazy::builder`] and
//!   `.metrics(&registry, name)`, every attempt's time goes into an [`mpm_metrics::Registry`]. The warm read is one acquire load and one branch, the same
//!   instructions as `OnceLock::get` (see [Unsafe code](#unsafe-code)).
//! - [`LazyRegistry`]: named services built on first lookup, each with a fallback chain of
//!   implementations ([`Service`]), dependencies resolved through a [`Resolver`], dependency
//!   cycles reported as [`Error::Cycle`] (also across threads) instead of deadlocking, per-service
//!   [`ServiceStats`] and bounded-concurrency warm-up.
//! - [`Swap`]: a hot-swappable handle, also for `dyn Trait`, on `arc-swap`.
//! - [`LazyField`]: a struct field its struct computes on first access (`|| self.scan()`).
//! - [`LazyConfig`]: a TOML, JSON or YAML file whose sections are parsed into `serde` types on
//!   first use; errors name the file, section, field and line; `reload()` keeps the old values
//!   when the new file is invalid.
//!
//! ```
//! use std::sync::Arc;
//! use mpm_lazy::{Lazy, Swap};
//!
//! static PROFILES: Lazy<Vec<String>, std::io::Error> =
//!     Lazy::new(|| Ok(vec!["engineer".to_owned(), "qa".to_owned()]));
//!
//! assert_eq!(PROFILES.get_or_init()?.len(), 2);
//!
//! let model: Swap<str> = Swap::new(Arc::from("sonnet"));
//! model.store(Arc::from("opus"));
//! assert_eq!(&*model.load(), "opus");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Unsafe code
//!
//! The crate denies `unsafe` everywhere but one function: the warm read of [`Lazy`] and
//! [`AsyncLazy`]. Each built value lives in its own heap allocation (an `aliasable` box, which
//! unlike `Box` claims no uniqueness, so moving the owner leaves pointers to the value valid)
//! that stays put until a `&mut self` method or drop; the current one is published as an atomic
//! pointer (stored only under the reset lock and only while its generation is current, cleared
//! by `reset()` before the new generation becomes visible), so `get()` is one acquire load, one
//! branch and a dereference, as `OnceLock::get` is. The cost: one allocation per successful
//! initialization. The protocol is checked by a shuttle model and by threaded stress tests of
//! readers racing resets; `lazy_warm_read` in `benches/benches/lazy.rs` measures it beside
//! `OnceLock::get`.
//!
//! # Metrics
//!
//! Components follow the [`mpm_metrics::contract`]: a builder takes
//! `.metrics(&registry, name)` and claims the name at `build()`, which returns
//! [`Error::Metrics`] if another component of the same kind holds it.
//!
//! ```
//! use mpm_lazy::{Lazy, LazyRegistry, Resolver};
//! use mpm_metrics::Registry;
//!
//! let registry = Registry::default();
//! let config = Lazy::builder(|| Ok::<_, std::io::Error>(42))
//!     .metrics(&registry, "config")
//!     .build()?;
//! let services = LazyRegistry::builder()
//!     .register_fn("db", |_: &Resolver| Ok(1_u8))
//!     .metrics(&registry, "services")
//!     .build()?;
//! assert_eq!(*config.get_or_init()?, 42);
//!
//! let text = registry.render_prometheus();
//! assert!(text.contains("mpm_lazy_init_seconds_count{name=\"config\",outcome=\"ok\"} 1\n"));
//! assert!(text.contains("mpm_lazy_registry_services_initialized{name=\"services\"} 0\n"));
//! # drop(services);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
#![doc = include_str!("metrics.md")]
//!
//! # Feature flags
//!
//! - `toml` (default): [`LazyConfig`] reads TOML files.
//! - `yaml` (default): [`LazyConfig`] reads YAML files.
//!
//! JSON is always read. Without a format's feature, [`LazyConfig::open`] refuses such a file
//! with [`Error::FormatNotEnabled`].
//!
//! # Minimum supported Rust version
//!
//! Rust 1.95.
#![deny(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod async_lazy;
mod config;
mod error;
mod field;
mod generation;
mod lazy;
mod policy;
mod published;
mod registry;
mod swap;

pub use async_lazy::{AsyncLazy, AsyncLazyBuilder};
pub use config::{ConfigBuilder, Format, LazyConfig, Reload};
pub use error::{BoxError, Error};
pub use field::LazyField;
pub use lazy::{Lazy, LazyBuilder};
pub use policy::{Backoff, InitStats};
pub use registry::{LazyRegistry, RegistryBuilder, Resolver, Service, ServiceStats, WarmUp};
pub use swap::{Swap, SwapGuard};
