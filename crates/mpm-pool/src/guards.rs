//! Drop guards of an acquisition, shared by both pools: each step of an acquire that can be
//! cancelled holds one, so that a cancelled or failed acquire leaves its queue (passing on
//! what it was handed), frees its reserved place and closes an object it was checking.
//!
//! The guards are generic over where the acquire takes place ([`Place`]): the plain pool,
//! or one key of the keyed pool. What each pool does on each step is its own.

use crate::stats::CloseReason;

/// Where an acquire takes place, and what its guards undo there.
pub(crate) trait Place {
    /// What the acquire holds while it checks it.
    type Entry;

    /// Waiter `id` leaves its queue; what it was handed meanwhile goes to the next waiter.
    fn give_up(&self, id: usize);

    /// A reserved place is freed (a cancelled or failed creation).
    fn free_reservation(&self);

    /// A lent entry is closed: it leaves the pool's count and its place goes to the waiters.
    fn close_lent(&self, entry: Self::Entry, reason: CloseReason);
}

/// Takes a waiter out of its queue on drop unless disarmed (`id` taken): an object or room
/// it was handed meanwhile goes to the next waiter.
pub(crate) struct Queued<P: Place> {
    pub(crate) place: P,
    pub(crate) id: Option<usize>,
}

impl<P: Place> Drop for Queued<P> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.place.give_up(id);
        }
    }
}

/// Frees a reserved place on drop unless disarmed (forgotten): a cancelled or failed
/// creation.
pub(crate) struct Reservation<P: Place>(pub(crate) P);

impl<P: Place> Drop for Reservation<P> {
    fn drop(&mut self) {
        self.0.free_reservation();
    }
}

/// Holds a lent entry being checked; closes it on drop if it still holds it (a cancelled
/// acquire, or a failed check), for `reason`.
pub(crate) struct Checking<P: Place> {
    pub(crate) place: P,
    pub(crate) entry: Option<P::Entry>,
    /// Why the entry is closed if the guard still holds it when dropped.
    pub(crate) reason: CloseReason,
}

impl<P: Place> Drop for Checking<P> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.place.close_lent(entry, self.reason);
        }
    }
}

/// Frees a half-open breaker's trial if a creation is cancelled.
pub(crate) struct AbandonTrial<'a>(pub(crate) &'a crate::breaker::CircuitBreaker);

impl Drop for AbandonTrial<'_> {
    fn drop(&mut self) {
        self.0.record_abandoned();
    }
}
