//! Fast, fair, self-healing pools for connections and other resources.
//!
//! A service that talks to databases, caches and agents spends its connections carefully:
//! they are slow to make, they break, servers drop them when idle, and a task that forgets
//! one starves the others. `mpm-pool` keeps a bounded set of objects made by your
//! [`Manager`] and hands them out fairly:
//!
//! - [`Pool`]: FIFO-fair waiters (first come, first served), FIFO or LIFO idle order, a
//!   timeout on every async step (acquire, create, validate, recycle), validation skipped for
//!   objects used within a window (500 ms by default, as HikariCP), jittered maximum
//!   lifetime, idle timeout (never below `min_idle`), jittered keepalive, leak detection that
//!   names the line that acquired the object, run-time resize, graceful close.
//! - Release is synchronous and allocation-free; a broken or discarded object is closed and
//!   never handed out again.
//! - One background maintenance task per pool, which can be switched off.
//! - Statistics ([`Status`]) and, when given a registry, `mpm-metrics` series: size, idle, in
//!   use, waiting, max; objects created and closed by [`CloseReason`]; timeouts; histograms
//!   of acquire wait, time in use and create time.
//! - [`CircuitBreaker`]: around object creation or any async call.
//! - [`keyed::KeyedPool`]: objects per key (a client id and its connection) with a maximum per
//!   key and in total; another key's idle object is evicted at the total cap; waiters on
//!   different keys are served first come, first served; a background task (switchable
//!   off) closes objects past the idle timeout and drops keys left empty; `mpm-metrics`
//!   series when given a registry ([`keyed::KeyedConfig::with_metrics`]).
//! - [`Manager::from_fns`] (or [`manager::from_fns`]): a manager from an async factory and a
//!   validity check.
//! - Ready managers for PostgreSQL and Redis (features below).
//!
//! # Example
//!
//! ```
//! use mpm_pool::{Manager, Pool};
//! use std::time::Duration;
//!
//! struct Sessions;
//!
//! impl Manager for Sessions {
//!     type Object = Vec<u8>;
//!     type Error = std::io::Error;
//!     async fn create(&self) -> Result<Vec<u8>, std::io::Error> {
//!         Ok(Vec::with_capacity(4096))
//!     }
//!     async fn recycle(&self, buf: &mut Vec<u8>) -> Result<(), std::io::Error> {
//!         buf.clear(); // reset state between users
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = mpm_metrics::Registry::default();
//! let pool = Pool::builder(Sessions)
//!     .max_size(16)
//!     .min_idle(2)
//!     .acquire_timeout(Some(Duration::from_secs(2)))
//!     .leak_detection(Some(Duration::from_secs(60)))
//!     .metrics(&registry, "sessions")
//!     .build()
//!     .await?;
//! let mut buf = pool.get().await?;
//! buf.extend_from_slice(b"hello");
//! drop(buf);
//! assert!(pool.get().await?.is_empty()); // recycled
//! assert_eq!(pool.status().size, 2);
//! # Ok(())
//! # }
//! ```
//!
//! # How it stays fast and correct
//!
//! - Getting an idle object and returning it take one semaphore permit (Tokio's FIFO-fair
//!   semaphore, so a returning task cannot barge past waiters) and one short lock each; with
//!   maintenance on they never read the system clock: timestamps come from a coarse
//!   millisecond clock that the maintenance task refreshes (every 100 ms at most, a quarter of
//!   the skip-validation window, a twentieth of the leak threshold). Comparisons that must not
//!   be optimistic (the skip-validation window, leak reports) allow for that lag.
//! - A caller that must wait for a permit sets no timer of its own while its deadline is more
//!   than two clock ticks away: the maintenance task wakes waiters every tick (also during a
//!   long maintenance pass), each compares the clock with its deadline, and only a wait still
//!   unserved near its deadline arms a precise timer. Registering and cancelling a timer per
//!   wait cost a third of a contended acquire; the acquire timeout still ends the wait on
//!   time. With maintenance off, each wait sets its timer.
//! - A maintenance pass closes idle objects that broke while idle (the manager's
//!   [`Manager::is_broken`], such as a PostgreSQL connection the server terminated) and
//!   refills `min_idle` in the same pass; a close anywhere else wakes the task to refill at
//!   once.
//! - Statistics sample one lease in 64 per object, recorded with weight 64, and record every
//!   wait of a millisecond or more exactly, which keeps their cost within the noise of a
//!   get-and-drop.
//! - Every step that can be cancelled holds a guard: a cancelled acquire returns its permit,
//!   frees a reserved place and closes an object it was checking.
//! - A creation failure is retried with jittered exponential backoff until the acquire
//!   deadline; other callers wait on the semaphore meanwhile, so a down server sees at most
//!   `max_size` attempts per backoff step.
//! - Leaks are counted in `pool_leaks_total` and reported; a leaked object is not reclaimed
//!   (the pool cannot know it will never come back). If it does come back, it is closed
//!   with reason `leaked` rather than lent again, and a new object takes its place.
//!
//! # Performance
//!
//! `cargo bench -p mpm-benches --bench pool -- --noplot`: no-op managers on a 2-worker Tokio
//! runtime, `objects x tasks`; the interleaved pass runs every pool in turn, eleven rounds
//! each. Medians of five runs of that pass on a shared 2-core VM (throughput ratios; deadpool
//! with a 30 s wait timeout like ours, and deadpool without one):
//!
//! | mode | shape | / deadpool | / bb8 | / deadpool, no timeout | cost of statistics |
//! |---|---|---|---|---|---|
//! | get and drop | 4x16 | 3.35x | 2.01x | 2.50x | 0.5% |
//! | get and drop | 8x32 | 3.22x | 1.87x | 2.56x | 3.0% |
//! | get and drop | 16x64 | 3.48x | 1.89x | 2.60x | 0.8% |
//! | hold (yield while holding) | 4x16 | 1.48x | 1.41x | 1.00x | 4.7% |
//! | hold | 8x32 | 1.44x | 1.39x | 0.98x | 3.0% |
//! | hold | 16x64 | 1.49x | 1.36x | 1.07x | 1.9% |
//!
//! The cost of statistics is near the run-to-run noise: single runs of get and drop range
//! from -1.3% to 10.0% (one run; the next highest is 4.1%). Fairness in hold mode (2,000
//! cycles per task, median of five rounds, in each of the same five runs; medians of those):
//! the first task finishes at 99.0-99.3% of the run (87.9% in the worst single run; bb8:
//! 83-87%), and the longest single wait is 96 µs, 184 µs and 258 µs at 4x16, 8x32 and 16x64
//! against deadpool's 181 µs, 227 µs and 342 µs. Single runs vary by several times either
//! way: ours was the longer in one of the five runs at 4x16 (8 ms against 0.3 ms, a stall of
//! the shared machine or of our pool, we cannot tell) and in one at 16x64.
//!
//! # Feature flags
//!
//! - `postgres`: [`postgres::PgManager`] on `tokio-postgres`: `SELECT 1` validation, a
//!   closed connection noticed without a round trip, recycling by a
//!   [`postgres::RecycleMethod`] (`DISCARD ALL` and others).
//! - `redis`: [`redis::RedisManager`] on the `redis` crate: multiplexed connections validated
//!   by `PING`.
//! - `deadpool`: [`adapters::FromDeadpool`], any `deadpool::managed::Manager` as a
//!   [`Manager`].
//! - `bb8`: [`adapters::FromBb8`], any `bb8::ManageConnection` as a [`Manager`].
//!
//! None is on by default.
//!
//! Minimum supported Rust version: 1.95.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

#[cfg(any(feature = "deadpool", feature = "bb8"))]
pub mod adapters;
mod breaker;
mod config;
mod error;
pub mod keyed;
pub mod manager;
mod pool;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
mod slots;
mod stats;

pub use breaker::{BreakerError, BreakerState, CircuitBreaker};
pub use config::{Builder, LeakReport, QueueMode};
pub use error::{BuildError, ConfigError, Error, Stage};
pub use manager::Manager;
pub use pool::{Object, Pool};
pub use stats::{CloseReason, Status};
