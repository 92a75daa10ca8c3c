//! Drop guards: each step of an acquire that can be cancelled holds one, so that a
//! cancelled or failed acquire leaves the queue (passing on what it was handed), frees its
//! reserved place and closes an object it was checking.

use std::sync::atomic::Ordering;

use super::inner::{Entry, Inner};
use crate::manager::Manager;
use crate::slots::Grant;
use crate::stats::CloseReason;

/// Takes a waiter out of the queue on drop unless disarmed (`key` taken): an object or room
/// it was handed meanwhile goes to the next waiter.
pub(super) struct Queued<'a, M: Manager> {
    pub(super) inner: &'a Inner<M>,
    pub(super) key: Option<usize>,
}

impl<M: Manager> Drop for Queued<'_, M> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let grant = self.inner.slots.lock().cancel(key);
            self.inner.pass_on(grant);
        }
    }
}

impl<M: Manager> Inner<M> {
    /// Passes on a grant its waiter did not use.
    pub(super) fn pass_on(&self, grant: Option<Grant<Box<Entry<M::Object>>>>) {
        match grant {
            Some(Grant::Object(entry)) => self.put_back(entry),
            Some(Grant::Room) => drop(Reservation(self)),
            None => {}
        }
    }
}

/// Frees a reserved place on drop unless disarmed (a cancelled or failed creation).
pub(super) struct Reservation<'a, M: Manager>(pub(super) &'a Inner<M>);

impl<M: Manager> Drop for Reservation<'_, M> {
    fn drop(&mut self) {
        let waiter = self.0.slots.lock().cancel_reservation();
        if let Some(waiter) = waiter {
            waiter.wake();
        }
        // No object left the pool, so there is nothing to refill: only a closing pool's
        // waiters care.
        if self.0.closed.load(Ordering::Acquire) {
            self.0.drained.notify_waiters();
        }
    }
}

/// Holds a lent entry being checked; closes it on drop (a cancelled acquire).
pub(super) struct Checking<'a, M: Manager> {
    pub(super) inner: &'a Inner<M>,
    pub(super) entry: Option<Box<Entry<M::Object>>>,
}

impl<M: Manager> Drop for Checking<'_, M> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.inner.close_lent(entry, CloseReason::Cancelled);
        }
    }
}

/// Frees a half-open breaker's trial if a creation is cancelled.
pub(super) struct AbandonTrial<'a>(pub(super) &'a crate::breaker::CircuitBreaker);

impl Drop for AbandonTrial<'_> {
    fn drop(&mut self) {
        self.0.record_abandoned();
    }
}
