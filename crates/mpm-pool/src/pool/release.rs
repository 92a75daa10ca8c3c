//! Giving objects back, closing them, and closing the pool.

use std::sync::atomic::Ordering;

use super::inner::{Entry, Inner};
use super::object::Timer;
use crate::manager::Manager;
use crate::stats::CloseReason;
use crate::unwind;

impl<M: Manager> Inner<M> {
    /// A lent object comes back (synchronous, allocation-free).
    pub(super) fn release(&self, mut entry: Entry<M::Object>, timer: Option<Timer>, discard: bool) {
        let now = self.clock.now();
        if let (Some(m), Some(t)) = (&self.metrics, timer) {
            m.in_use_time.record_duration(t.elapsed());
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
                let refused = self.slots.lock().put(entry);
                if let Err(entry) = refused {
                    self.close_lent(entry, CloseReason::Shutdown);
                } else if self.closed.load(Ordering::Acquire) {
                    self.drain_idle();
                }
            }
        }
        self.release_permit();
    }

    pub(super) fn release_permit(&self) {
        self.permit_debt.release(|| self.semaphore.add_permits(1));
    }

    /// Closes a lent entry: it leaves the pool's count.
    pub(super) fn close_lent(&self, entry: Entry<M::Object>, reason: CloseReason) {
        self.slots.lock().forget_lent();
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
    pub(super) fn close_object(&self, entry: Entry<M::Object>, reason: CloseReason) {
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
        self.semaphore.close();
        self.drain_idle();
        self.wake.notify_one();
        self.drained.notify_waiters();
    }
}
