//! What the shared drop guards ([`crate::guards`]) undo in the plain pool.

use std::sync::atomic::Ordering;

use super::inner::{Entry, Inner};
use crate::guards::{Place, Reservation};
use crate::manager::Manager;
use crate::slots::Grant;
use crate::stats::CloseReason;

impl<M: Manager> Place for &Inner<M> {
    type Entry = Box<Entry<M::Object>>;

    fn give_up(&self, id: usize) {
        let grant = self.slots.lock().cancel(id);
        self.pass_on(grant);
    }

    fn free_reservation(&self) {
        let waiter = self.slots.lock().cancel_reservation();
        if let Some(waiter) = waiter {
            waiter.wake();
        }
        // No object left the pool, so there is nothing to refill: only a closing pool's
        // waiters care.
        if self.closed.load(Ordering::Acquire) {
            self.drained.notify_waiters();
        }
    }

    fn close_lent(&self, entry: Self::Entry, reason: CloseReason) {
        Inner::close_lent(self, entry, reason);
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
