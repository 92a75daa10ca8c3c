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
//! - Statistics ([`Status`]) and, when a builder is given a registry with
//!   `.metrics(&registry, name)`, `mpm-metrics` series named by the `mpm_metrics::contract`:
//!   gauges fresh at every scrape, counters, and histograms whose counts are exact (see
//!   [Metrics](#metrics) below).
//! - [`CircuitBreaker`]: around object creation or any async call; acquires wait for its
//!   probe instead of failing at once.
//! - [`keyed::KeyedPool`]: objects per key (a client id and its connection) with a maximum per
//!   key and in total; another key's idle object is evicted at the total cap; waiters on
//!   different keys are served first come, first served; a background task (switchable
//!   off) closes objects past the idle timeout and drops keys left empty; a builder
//!   ([`keyed::KeyedPool::builder`]).
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
//!     .max_size(std::num::NonZeroUsize::new(16).unwrap())
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
//! - Getting an idle object and returning it take one short lock each. Callers that find
//!   nothing free queue in arrival order, and a returned object goes straight to the first of
//!   them (direct hand-off: it never passes through the idle queue while someone waits, so a
//!   returning task cannot barge past waiters, and no permit changes hands). With
//!   maintenance on, getting and returning never read the system clock: timestamps come from a coarse
//!   millisecond clock that the maintenance task refreshes (every 100 ms at most, a quarter of
//!   the skip-validation window, a twentieth of the leak threshold). Comparisons that must not
//!   be optimistic (the skip-validation window, leak reports) allow for that lag. The coarse
//!   clock is trusted only while it was refreshed within a tick (and a few milliseconds): the
//!   process-wide heartbeat ([`mpm_metrics::heartbeat`]: one thread, `mpm-heartbeat`, for all
//!   pools and mpm-cache's coarse clocks, beating every 2 ms) tells a reader so with one load, and a reader that finds the clock stale (the task
//!   stalled: its runtime not driven, its thread blocked, starved) reads the system clock and
//!   refreshes it, and wakes the waiters that counted on the stalled task's sweep, so that
//!   lifetimes, the skip-validation window and deadlines hold without the task. The
//!   heartbeat runs only while a pool with maintenance on (or a coarse cache clock) is alive:
//!   the first such pool starts the thread, which then costs a wake-up and a store every 2 ms
//!   (500 a second, however many pools there are), and once the last such pool is gone (dropped, and let go
//!   by its maintenance task, which sees it closed within a tick) the thread parks, with no
//!   wake-ups, until another is built. Pools with maintenance off never use it.
//! - A caller that must wait sets no timer of its own while its deadline is more than two
//!   clock ticks away: its place in the queue says when it must be woken (the pool keeps the
//!   earliest such time); the first tick at or after that time (also during a long
//!   maintenance pass) wakes the waiters whose time has come, and each arms a precise timer.
//!   Registering and cancelling a timer per wait cost a third of a contended acquire, and
//!   waking every waiter on every tick instead put a burst of needless wake-ups ahead of the
//!   waiters being served; the acquire timeout still ends the wait on time. With maintenance
//!   off, each wait sets its timer. A wait's deadline starts at a time read from the TSC
//!   (through `quanta`), which each tick keeps in step with Tokio's clock (Tokio's clock
//!   itself is read while it is paused, in tests, or when ticks are late).
//! - A maintenance pass closes idle objects that broke while idle (the manager's
//!   [`Manager::is_broken`], such as a PostgreSQL connection the server terminated) and
//!   refills `min_idle` in the same pass; a close anywhere else wakes the task to refill at
//!   once.
//! - With metrics on, every lease is recorded: a get that did not wait records a zero wait
//!   without reading the clock; a get that waited keeps the raw TSC reading its wait's
//!   deadline started from, and one raw reading on lend ends the wait and starts the time in
//!   use, which one more ends on release (Tokio's clock instead while it is paused, or ticks
//!   are late). `cargo xtask bench pool` shows the cost as `mpm_stats` beside `mpm`.
//! - Every step that can be cancelled holds a guard: a cancelled acquire leaves the queue
//!   (passing on an object or room it was handed meanwhile), frees a reserved place and
//!   closes an object it was checking.
//! - A creation failure is retried with jittered exponential backoff until the acquire
//!   deadline; the caller keeps its reserved place through each pause and other callers
//!   wait in the queue meanwhile, so a down server sees at most `max_size` attempts per
//!   backoff step. The first creation that succeeds ends every other place's pause at once
//!   and resets its backoff (and the refill's), so a server back after a long outage is
//!   used by every place within a creation, not as each place's pause (up to the maximum)
//!   runs out.
//! - Leaks are counted in `mpm_pool_leaks_total` and reported; a leaked object is not reclaimed
//!   (the pool cannot know it will never come back). If it does come back, it is closed
//!   with reason `leaked` rather than lent again, and a new object takes its place.
//!
//! # Performance
//!
//! `cargo xtask bench pool` (or `cargo bench -p mpm-benches --bench pool -- --noplot`) runs
//! get-and-drop, hold, keyed and fairness passes with no-op managers, ours beside deadpool
//! and bb8 in the same run, and prints the ratios; the figures live in that output, not here.
//!
//! # Surviving faults
//!
//! - A connection whose command failed with an I/O error is closed when it comes back (the
//!   Redis manager remembers it; any manager can say so in [`Manager::is_broken`]); only a
//!   creation or a validation counts as proof of life for the skip-validation window.
//! - Every deadline holds without the maintenance task: a wait uses the task's sweep only
//!   while the task runs and keeps time, and an acquire that finds the task gone (its
//!   runtime shut down) starts a new one on its own runtime.
//! - A panic in a [`Manager`] method drops that object, frees its place and returns
//!   [`Error::ManagerPanicked`] naming the method; the maintenance task survives it.
//! - With a [`CircuitBreaker`], an acquire waits for the breaker's probe within its deadline
//!   instead of failing at once; cool-downs start at 1 s and double on each failed probe.
//!
//! # Feature flags
//!
//! - `postgres`: `postgres::PgManager` on `tokio-postgres`: `SELECT 1` validation, a
//!   closed connection noticed without a round trip, recycling by a
//!   `postgres::RecycleMethod` (`DISCARD ALL` and others).
//! - `redis`: `redis::RedisManager` on the `redis` crate: multiplexed connections validated
//!   by `PING`.
//! - `deadpool`: `adapters::FromDeadpool`, any `deadpool::managed::Manager` as a
//!   [`Manager`].
//! - `bb8`: `adapters::FromBb8`, any `bb8::ManageConnection` as a [`Manager`].
//!
//! None is on by default (the items above exist only with their feature; docs.rs builds
//! with all of them).
//!
//! Minimum supported Rust version: 1.95.
//!
#![doc = include_str!("metrics.md")]
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

#[cfg(any(feature = "deadpool", feature = "bb8"))]
pub mod adapters;
mod backoff;
mod breaker;
mod clock;
mod config;
mod deadline;
mod error;
mod guards;
pub mod keyed;
pub mod manager;
mod metrics;
mod pool;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
mod slots;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod stats;
mod task;
mod unwind;
mod waiters;

pub use breaker::{
    BreakerBuilder, BreakerError, BreakerState, CircuitBreaker, DEFAULT_COOL_DOWN,
    MAX_COOL_DOWN_FACTOR, Refused,
};
pub use config::{LeakReport, QueueMode};
pub use error::{BuildError, ConfigError, Error, Stage};
pub use manager::Manager;
pub use pool::{Builder, Object, Pool};
pub use stats::{CloseReason, Status};
