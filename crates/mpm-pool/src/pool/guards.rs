//! Drop guards: each step of an acquire that can be cancelled holds one, so that a
//! cancelled or failed acquire returns its permit, frees its reserved place and closes an
//! object it was checking.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::inner::{Entry, Inner};
use crate::manager::Manager;
use crate::stats::CloseReason;

pub(super) struct PermitGuard<'a, M: Manager>(pub(super) &'a Inner<M>);

impl<M: Manager> Drop for PermitGuard<'_, M> {
    fn drop(&mut self) {
        self.0.release_permit();
    }
}

/// Frees a reserved place on drop unless disarmed (a cancelled or failed creation).
pub(super) struct Reservation<'a, M: Manager>(pub(super) &'a Inner<M>);

impl<M: Manager> Drop for Reservation<'_, M> {
    fn drop(&mut self) {
        self.0.slots.lock().cancel_reservation();
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
    pub(super) entry: Option<Entry<M::Object>>,
}

impl<M: Manager> Drop for Checking<'_, M> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.inner.close_lent(entry, CloseReason::Cancelled);
        }
    }
}

/// Decrements the waiting count on drop.
pub(super) struct Waiting<'a>(pub(super) &'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Frees a half-open breaker's trial if a creation is cancelled.
pub(super) struct AbandonTrial<'a>(pub(super) &'a crate::breaker::CircuitBreaker);

impl Drop for AbandonTrial<'_> {
    fn drop(&mut self) {
        self.0.record_abandoned();
    }
}
