//! Bounded-concurrency execution and size/time windowed batching, on Tokio, that never loses
//! an item without saying so.
//!
//! An agent-orchestration service deploys many agents at once but not all at once, and sends
//! its dashboard events in batches rather than one by one. Hand-written, that is a
//! `Semaphore` plus a `JoinSet` (and code to put results back in order, to survive a
//! panicking job, to stop the rest when the caller gives up), or an `mpsc` channel plus a
//! `timeout` loop (with an unbounded queue, or a silent drop when it is full). This crate is
//! that code, once, tested:
//!
//! - [`run_bounded`]: at most `limit` jobs at once, every result back in input order as a
//!   `Result`; one job's error or panic does not touch the others; dropping the future
//!   cancels every job in flight. [`run_bounded_stream`] takes a `Stream` of inputs (with
//!   backpressure) and yields `(index, result)` as jobs finish.
//! - [`BatchProcessor`]: the guide's `BatchProcessor(batch_size, max_concurrency)`: batches
//!   run with bounded concurrency, results flattened in order, a failed batch reported with
//!   its items.
//! - [`Batcher`]: items from many tasks, grouped by key, handed to a consumer in batches of
//!   N items or after T since a batch's first item; a bounded queue with an explicit
//!   [`Overflow`] policy; `flush()` and `shutdown()` deliver everything accepted; a failing
//!   or panicking consumer's batch is handed back or counted as lost ([`OnFailure`]);
//!   statistics through `mpm-metrics` ([`stats`]).
//!
//! # Example
//!
//! ```
//! use std::num::NonZeroUsize;
//! use mpm_batch::run_bounded;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! // Deploy six agents, at most five at a time; agent 4's deployment panics.
//! let agents = ["research", "engineer", "qa", "docs", "ops", "security"];
//! let limit = NonZeroUsize::new(5).unwrap();
//! let results = run_bounded(agents.iter().enumerate(), limit, |(i, name)| async move {
//!     tokio::task::yield_now().await;
//!     if i == 4 { panic!("{name}: template missing") }
//!     Ok::<_, std::io::Error>(format!("{name}.md"))
//! })
//! .await;
//! assert_eq!(results[0].as_ref().unwrap(), "research.md");
//! assert_eq!(results[4].as_ref().unwrap_err().panic_message(), Some("ops: template missing"));
//! assert_eq!(results[5].as_ref().unwrap(), "security.md");
//! # });
//! ```
//!
//! # Edge values
//!
//! Limits, batch sizes and capacities are `NonZeroUsize`, so zero cannot be asked for. A
//! zero `max_delay` is refused by [`BatcherBuilder::build`] with [`Error::ZeroDelay`], and so
//! is building a [`Batcher`] outside a Tokio runtime ([`Error::NoRuntime`]). No input makes
//! this crate panic.
//!
//! # Features
//!
//! None: the crate needs Tokio's `rt`, `sync` and `time`, `futures` and `mpm-metrics`.
//!
//! Minimum supported Rust version: 1.95.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod batcher;
mod bounded;
mod error;
mod processor;
mod state;
pub mod stats;

pub use batcher::{Batch, Batcher, BatcherBuilder, FlushReason, OnFailure, Overflow, Undelivered};
pub use bounded::{run_bounded, run_bounded_stream};
pub use error::{ConsumerError, Error, JobError, PushError};
pub use processor::{BatchProcessor, BatchProcessorBuilder, FailedBatch, ItemResult};
pub use stats::{BatcherStats, FlushCounts};
