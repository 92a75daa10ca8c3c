//! Giving objects back, closing them, and closing the pool.

use std::sync::atomic::Ordering;

use super::inner::{Entry, Inner};
use super::object::Timer;
use crate::manager::Manager;
use crate::stats::CloseReason;
use crate::task::Maintained;
use crate::unwind;

impl<M: Manager> Inner<M> {
    /// A lent object comes back (synchronous, allocation-free): to the first waiter if there
    /// is one, else to the idle queue.
    #[inline]
    pub(super) fn release(
        &self,
        mut entry: Box<Entry<M::Object>>,
        timer: Option<Timer>,
        discard: bool,
    ) {
        let now = self.now();
        if let (Some(m), Some(t)) = (&self.metrics, timer) {
            m.returned(&self.clock, t);
        }
        let leaked = self
            .leases
            .as_ref()
            .and_then(|leases| leases.lock().remove(&entry.id))
            .is_some_and(|lease| lease.reported);
        let reason = if discard {
            Some(CloseReason::Discarded)
        } else if let Some(reason) = self.broken(&mut entry.obj) {
            Some(reason)
        } else if leaked {
            Some(CloseReason::Leaked)
        } else if self.closed.load(Ordering::Acquire) {
            Some(CloseReason::Shutdown)
        } else if now >= entry.expires {
            Some(CloseReason::Lifetime)
        } else {
            None
        };
        match reason {
            Some(reason) => self.close_lent(entry, reason),
            None => {
                // Not `last_alive`: that a caller used the object says nothing about whether
                // its last command worked, so only a creation or a validation vouches for it.
                entry.last_used = now;
                entry.dirty = true;
                self.put_back(entry);
            }
        }
    }

    /// Puts a lent entry back: to the first waiter or the idle queue (closed instead above
    /// the maximum, after a shrink).
    #[inline]
    pub(super) fn put_back(&self, entry: Box<Entry<M::Object>>) {
        let put = self.slots.lock().put(entry);
        match put {
            Err(entry) => self.close_lent(entry, CloseReason::Shutdown),
            Ok(Some(waiter)) => waiter.wake(),
            Ok(None) => {
                if self.closed.load(Ordering::Acquire) {
                    self.drain_idle();
                }
            }
        }
    }

    /// Closes a lent entry: it leaves the pool's count, and its place goes to the first
    /// waiter.
    pub(super) fn close_lent(&self, entry: Box<Entry<M::Object>>, reason: CloseReason) {
        let waiter = self.slots.lock().forget_lent();
        if let Some(waiter) = waiter {
            waiter.wake();
        }
        self.close_object(entry, reason);
    }

    /// The manager's synchronous check: `Some(Broken)`, `Some(Panicked)` if it panicked, or
    /// `None` if the object looks fine.
    pub(super) fn broken(&self, obj: &mut M::Object) -> Option<CloseReason> {
        match unwind::call("is_broken", || self.manager.is_broken(obj)) {
            Ok(false) => None,
            Ok(true) => Some(CloseReason::Broken),
            Err(_) => Some(CloseReason::Panicked),
        }
    }

    /// Closes an entry that is no longer counted.
    pub(super) fn close_object(&self, entry: Box<Entry<M::Object>>, reason: CloseReason) {
        // A panic in `close` has already dropped the object: nothing more to do.
        let _ = unwind::call("close", || self.manager.close(entry.obj));
        if let Some(m) = &self.metrics {
            m.closed(reason);
        }
        self.after_close();
    }

    /// After an object left the pool: wake the maintenance task to refill, or signal the
    /// waiters of a closed pool.
    pub(super) fn after_close(&self) {
        if self.closed.load(Ordering::Acquire) {
            self.drained.notify_waiters();
        } else if self.config.min_idle > 0 {
            self.wake.notify_one();
        }
    }

    pub(super) fn drain_idle(&self) {
        let drained = self.slots.lock().drain_idle();
        for entry in drained {
            self.close_object(entry, CloseReason::Shutdown);
        }
    }

    pub(super) fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.drain_idle();
        // Every waiter looks again, finds the pool closed and leaves.
        let woken = self.slots.lock().wake_all();
        for waiter in woken {
            waiter.wake();
        }
        self.wake.notify_one();
        self.drained.notify_waiters();
    }
}
