//! The pool's shared state ([`Inner`]), each lent or idle [`Entry`], and its status.

use std::collections::HashMap;
use std::ops::Deref;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Waker;
use std::time::Duration;

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::backoff::Recovery;
use crate::clock::{Clock, Ms};
use crate::config::{Config, MAX_SIZE_LIMIT};
use crate::error::{ConfigError, Error, Stage};
use crate::manager::Manager;
use crate::metrics::PoolMetrics;
use crate::slots::Slots;
use crate::stats::{CloseReason, Status};

/// One pooled object with its bookkeeping. Entries live boxed: an acquire hands one through
/// several steps (taken, granted, checked, lent), and moving a pointer costs a register where
/// moving the entry cost a copy of six words at each step (and stalls on loads of what was just
/// stored), about 90 instructions of a single-task get and drop.
pub(crate) struct Entry<T> {
    pub(super) obj: T,
    pub(super) id: u64,
    /// When the jittered maximum lifetime ends ([`NEVER`](crate::clock::NEVER) without one).
    pub(super) expires: Ms,
    /// When a user last returned it.
    pub(super) last_used: Ms,
    /// When it was last known to work: created or validated.
    pub(super) last_alive: Ms,
    /// It was used since its last recycle.
    pub(super) dirty: bool,
}

/// The slots of a pool of `M`'s objects, woken through Tokio's wakers.
pub(crate) type PoolSlots<M> = Slots<Box<Entry<<M as Manager>::Object>>, Waker>;

/// The lock of a pool's slots, with a hint on its cache line: whether callers were queued
/// when a get last released the lock. A get that sees it set joins the queue and registers
/// its waker under one lock, in its wait's first poll, instead of one lock to join and
/// another to register. The hint is read without the lock and may be stale either way
/// (returns do not update it): that costs only the extra lock, or a needless clock read and
/// poll once a line of waiters has been served (that get finds an idle object or room and
/// takes it in the same poll, and clears the hint).
#[repr(C)]
pub(crate) struct SlotsLock<M: Manager> {
    /// The hint, first: the lock word follows on the same line.
    pub(super) queued: AtomicBool,
    pub(super) lock: Mutex<PoolSlots<M>>,
}

impl<M: Manager> SlotsLock<M> {
    pub(super) fn new(slots: PoolSlots<M>) -> Self {
        SlotsLock {
            queued: AtomicBool::new(false),
            lock: Mutex::new(slots),
        }
    }

    /// Updates the hint from `slots` (locked).
    pub(super) fn hint(&self, slots: &PoolSlots<M>) {
        self.queued.store(slots.waiting() > 0, Ordering::Relaxed);
    }
}

impl<M: Manager> Deref for SlotsLock<M> {
    type Target = Mutex<PoolSlots<M>>;
    fn deref(&self) -> &Self::Target {
        &self.lock
    }
}

/// An object being held (a lease), for leak detection.
pub(super) struct Lease {
    pub(super) since: Ms,
    pub(super) at: &'static Location<'static>,
    pub(super) reported: bool,
}

/// The hot fields each sit on their own cache lines (`CachePadded`), away from one another
/// and from the `Arc` counters, so that two cores getting and returning objects do not also
/// fight over lines they merely read.
pub(crate) struct Inner<M: Manager> {
    pub(super) manager: M,
    pub(super) config: Config,
    /// Idle objects, counts and the queue of waiters, which returned objects are handed to.
    pub(super) slots: CachePadded<SlotsLock<M>>,
    pub(super) closed: AtomicBool,
    pub(super) next_id: AtomicU64,
    /// Wakes the maintenance task (an object was closed, or the pool closed); shared with the
    /// task, which waits on it without holding the pool.
    pub(super) wake: std::sync::Arc<Notify>,
    /// A maintenance task is running: set by whoever spawns one, cleared when the task ends
    /// for any reason (its runtime shut down, a panic, the pool closed). While it is clear,
    /// waits use their own timers and the next acquire starts a new task on its runtime.
    pub(super) ticking: AtomicBool,
    /// Signalled when an object leaves the pool after it was closed.
    pub(super) drained: Notify,
    /// When (in [`Ms`]) the earliest queued waiter must be woken by the maintenance task's
    /// sweep to arm its own timer, or [`NEVER`](crate::clock::NEVER): a tick looks at the
    /// queue only once this time has come, so waiters far from their deadlines (most of them,
    /// with the default 30 s timeout) cost no timer and no wake-up. Written under the lock of
    /// `slots`.
    pub(super) sweep_due: CachePadded<AtomicU64>,
    pub(super) leases: Option<Mutex<HashMap<u64, Lease>>>,
    pub(super) metrics: Option<PoolMetrics>,
    pub(super) clock: Clock,
    /// Consecutive failed refill passes, and when the next may run; reset by any successful
    /// creation.
    pub(super) refill_backoff: Mutex<(u32, Ms)>,
    /// Ends the callers' pauses after failed creations once a creation succeeds.
    pub(super) recovery: Recovery,
    /// The skip-validation window in milliseconds.
    pub(super) skip_window: Ms,
}

impl<M: Manager> Inner<M> {
    pub(super) fn status(&self) -> Status {
        let slots = self.slots.lock();
        let status = Status {
            size: slots.size(),
            idle: slots.idle(),
            in_use: slots.lent(),
            creating: slots.creating(),
            waiting: slots.waiting(),
            max_size: slots.max(),
            available: slots.available(),
            breaker: self.config.breaker.as_ref().map(|b| b.state()),
        };
        drop(slots);
        status
    }

    pub(super) fn resize(&self, max_size: usize) -> Result<(), ConfigError> {
        if max_size > MAX_SIZE_LIMIT {
            return Err(ConfigError::TooLarge(max_size));
        }
        if max_size < self.config.min_idle {
            return Err(ConfigError::MinIdleAboveMax {
                min_idle: self.config.min_idle,
                max_size,
            });
        }
        let (excess, woken) = self.slots.lock().set_max(max_size);
        for waker in woken {
            waker.wake();
        }
        for entry in excess {
            self.close_object(entry, CloseReason::Shutdown);
        }
        Ok(())
    }

    pub(super) fn timed_out(&self, stage: Stage, timeout: Option<Duration>) -> Error<M::Error> {
        self.count_timeout(Stage::Acquire);
        Error::Timeout {
            stage,
            timeout: timeout.unwrap_or_default(),
        }
    }

    pub(super) fn count_timeout(&self, stage: Stage) {
        if let Some(m) = &self.metrics {
            m.timeout(stage);
        }
    }
}
