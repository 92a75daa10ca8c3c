//! Lazy values, lazy service registries, hot-swappable handles and configuration parsed on demand.
//!
//! Agent-orchestration services start faster when expensive things (profile scans, database
//! clients, configuration sections) are built on first use instead of at start-up. This crate
//! gives the building blocks, each closing a gap of the usual tools:
//!
//! - [`Lazy`] and [`AsyncLazy`]: a value built on first use, like `std::sync::LazyLock` or
//!   tokio's `OnceCell`, but a failed or panicking or cancelled initialization is retried by the
//!   next caller (with an optional [`Backoff`]) instead of poisoning the value; `reset()` works
//!   through `&self`; `get()` never initializes; the init time can go into an
//!   [`mpm_metrics::Registry`]. The warm read is one acquire load and one branch, the same
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
//! # Feature flags
//!
//! None yet.
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

pub use async_lazy::AsyncLazy;
pub use config::{Format, LazyConfig, Reload};
pub use error::{BoxError, Error};
pub use field::LazyField;
pub use lazy::Lazy;
pub use policy::{Backoff, InitStats};
pub use registry::{LazyRegistry, RegistryBuilder, Resolver, Service, ServiceStats, WarmUp};
pub use swap::{Swap, SwapGuard};
