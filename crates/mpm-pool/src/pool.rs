//! [`Pool`] and its lent-out [`Object`].
//!
//! # An acquisition, step by step
//!
//! ```text
//!                      get() / get_timeout()
//!                               |
//!                 closed? ------+------> Err(Closed)
//!                               |  (maintenance task gone? start one on this runtime)
//!                               v
//!          +----------> TAKE from the slots (one lock)
//!          |     +--------------------+---------------------+
//!          |     | idle entry         | room (reserved)     | nothing free, or others queued
//!          |     |                    |                     v
//!          |     |                    |   +----------- QUEUED (first come, first served) ----+
//!          |     |                    |   | a release hands its object (or a close its room) |
//!          |     |                    |   | to the first in the queue and wakes it           |
//!          |     |                    |   | deadline > 2 ticks away, task ticks on time:     |
//!          |     |                    |   |   SWEEP: the queue place holds the wake time;    |
//!          |     |                    |   |   the tick at or after it wakes the waiter       |
//!          |     |                    |   | else (near the deadline, no task, task late):    |
//!          |     |                    |   |   PRECISE TIMER --- fires --> Err(Timeout{acquire})
//!          |     |                    |   +--------------------------------------------------+
//!          |     |                    |        | handed an object     | handed room
//!          |     v                    |        v                      |
//!          |  expired? broken? <------|--------+                      |
//!          |     |                    v                               v
//!          |     |               CREATE (breaker, create timeout, deadline;
//!          +-- yes: close          failure: backoff keeping the place, CREATE again;
//!                |                breaker open: wait for its probe, TAKE again)
//!                v no                       |
//!   CHECK: recycle if used,                 |
//!   validate unless alive                   |
//!   within the skip window                  |
//!   (each bounded by its step               |
//!   timeout and the deadline;               |
//!   failure: close, TAKE again)             |
//!          |                                |
//!          +------------> LEND <------------+   (metrics: wait and time in use recorded)
//! ```
//!
//! Every arrow out of a step that can be cancelled runs a guard (`crate::guards`, shared with
//! the keyed pool; [`guards`] says what each undoes here): a dropped
//! `get` leaves the queue (passing on what it was handed), frees its reserved place and closes
//! an object it was checking.
//! A panic in a manager method ([`crate::unwind`]) closes that object and ends the `get` with
//! [`Error::ManagerPanicked`].
//!
//! The files: [`builder`] (settings), [`inner`] (shared state and status), [`acquire`] (the
//! path above), [`release`] (giving back and closing), [`maintenance`] (the task, the clock's
//! ticks and the sweep), [`guards`], [`object`].

mod acquire;
mod builder;
mod guards;
mod inner;
mod maintenance;
mod object;
mod release;

pub use builder::Builder;
pub(crate) use inner::Inner;
pub use object::Object;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::panic::Location;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::clock::{Clock, NEVER, ms, tick_for};
use crate::config::Config;
use crate::error::{ConfigError, Error};
use crate::manager::Manager;
use crate::metrics::{Figures, Kind, PoolMetrics};
use crate::slots::Slots;
use crate::stats::Status;

/// An async pool of objects made by a [`Manager`]: FIFO-fair waiters, validation, lifetimes,
/// leak detection and one background maintenance task. Cloning shares the pool; dropping the
/// last clone closes it.
///
/// ```
/// use mpm_pool::{Manager, Pool};
/// use std::convert::Infallible;
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
///
/// struct Connections;
///
/// impl Manager for Connections {
///     type Object = String;
///     type Error = Infallible;
///     async fn create(&self) -> Result<String, Infallible> {
///         Ok(String::from("connection"))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(Connections)
///     .max_size(NonZeroUsize::new(8).unwrap())
///     .min_idle(2)
///     .acquire_timeout(Some(Duration::from_secs(5)))
///     .build()
///     .await?;
/// assert_eq!(pool.status().idle, 2);
/// {
///     let conn = pool.get().await?;
///     assert_eq!(conn.as_str(), "connection");
/// } // returned here, synchronously
/// pool.close();
/// # Ok(())
/// # }
/// ```
pub struct Pool<M: Manager> {
    handle: Arc<Handle<M>>,
}

/// The user-facing owner: when the last [`Pool`] clone goes, the pool closes.
struct Handle<M: Manager> {
    inner: Arc<Inner<M>>,
}

impl<M: Manager> Drop for Handle<M> {
    fn drop(&mut self) {
        self.inner.close();
    }
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            handle: Arc::clone(&self.handle),
        }
    }
}

impl<M: Manager> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl<M: Manager> Pool<M> {
    /// A builder for a pool of objects made by `manager`.
    pub fn builder(manager: M) -> Builder<M> {
        Builder::new(manager)
    }

    pub(crate) fn from_parts(manager: M, config: Config) -> Result<Self, ConfigError> {
        let (metrics, gauges) = match &config.registry {
            Some((registry, name)) => {
                let (m, g) = PoolMetrics::register(registry, name, Kind::Plain)?;
                (Some(m), Some(g))
            }
            None => (None, None),
        };
        let inner = Arc::new(Inner {
            slots: CachePadded::new(inner::SlotsLock::new(Slots::new(config.max_size))),
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            wake: Arc::new(Notify::new()),
            ticking: AtomicBool::new(false),
            drained: Notify::new(),
            sweep_due: CachePadded::new(AtomicU64::new(NEVER)),
            leases: config
                .leak_threshold
                .map(|_| Mutex::new(HashMap::with_capacity(config.max_size.min(1024)))),
            metrics,
            clock: Clock::new(
                config
                    .maintenance
                    .map(|_| tick_for(config.skip_validation_within, config.leak_threshold)),
            ),
            skip_window: ms(config.skip_validation_within),
            refill_backoff: Mutex::new((0, 0)),
            recovery: crate::backoff::Recovery::new(),
            manager,
            config,
        });
        if let (Some(m), Some(g)) = (&inner.metrics, gauges) {
            m.collect(&inner, g, |inner| Figures::from(&inner.status()));
        }
        if inner.config.maintenance.is_some() {
            tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
            inner.ensure_maintenance();
        }
        Ok(Pool {
            handle: Arc::new(Handle { inner }),
        })
    }

    fn inner(&self) -> &Arc<Inner<M>> {
        &self.handle.inner
    }

    /// Gets an object: an idle one (recycled if it was used, validated unless used within
    /// the skip-validation window) or a new one. Waiters are served first come, first
    /// served. The whole call is bounded by the acquire timeout. The place of the call is
    /// remembered for leak reports.
    #[track_caller]
    pub fn get(&self) -> impl Future<Output = Result<Object<M>, Error<M::Error>>> + Send + '_ {
        let at = Location::caller();
        self.inner()
            .acquire(at, self.inner().config.acquire_timeout)
    }

    /// Like [`Pool::get`] with a timeout for this call instead of the pool's.
    #[track_caller]
    pub fn get_timeout(
        &self,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Object<M>, Error<M::Error>>> + Send + '_ {
        let at = Location::caller();
        self.inner().acquire(at, timeout)
    }

    /// The pool's current state (the metrics' gauges read the same at every scrape).
    pub fn status(&self) -> Status {
        self.inner().status()
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.inner().manager
    }

    /// Changes the maximum size. Growing takes effect at once; shrinking closes idle objects
    /// above the new maximum now and lent ones as they come back.
    pub fn resize(&self, max_size: NonZeroUsize) -> Result<(), ConfigError> {
        self.inner().resize(max_size.get())
    }

    /// Closes the pool: waiters and later calls get [`Error::Closed`], idle objects are
    /// closed now and lent ones when they come back, and the maintenance task stops.
    pub fn close(&self) {
        self.inner().close();
    }

    /// Whether the pool was closed.
    pub fn is_closed(&self) -> bool {
        self.inner().closed.load(Ordering::Acquire)
    }

    /// Closes the pool and waits until every lent object has come back and been closed, at
    /// most `timeout`. Returns whether the pool emptied in time.
    pub async fn close_and_wait(&self, timeout: Duration) -> bool {
        let inner = self.inner();
        inner.close();
        let deadline = Instant::now() + timeout;
        loop {
            let mut drained = pin!(inner.drained.notified());
            drained.as_mut().enable();
            if inner.slots.lock().size() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return inner.slots.lock().size() == 0;
            }
        }
    }

    /// Creates objects until `min_idle` are idle (at build).
    pub(crate) async fn fill_min_idle(&self) -> Result<(), Error<M::Error>> {
        let inner = self.inner();
        while inner.refill_one().await? {}
        Ok(())
    }

    /// Runs the maintenance pass now (lifetimes, idle timeouts, keepalive, refill, leaks),
    /// as the background task does on each tick.
    pub async fn run_maintenance(&self) {
        self.inner().maintain_once().await;
    }
}
