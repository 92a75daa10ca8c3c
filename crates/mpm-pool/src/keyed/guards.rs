//! What the shared drop guards ([`crate::guards`]) undo in the keyed pool: a waiter that
//! goes away leaves its key's line and gives back what it was handed, an object being
//! validated is closed, a reserved place is freed.

use std::hash::Hash;
use std::task::Waker;

use super::inner::{Inner, KeySlot};
use super::manager::KeyedManager;
use super::state::KEntry;
use crate::guards::Place;
use crate::stats::CloseReason;
use crate::waiters::Woken;

/// An acquire on one key of a keyed pool.
pub(super) struct OnKey<'a, K, M: KeyedManager<K>> {
    pub(super) inner: &'a Inner<K, M>,
    pub(super) key: &'a K,
    pub(super) slot: &'a KeySlot<K, M>,
}

impl<K, M> Place for OnKey<'_, K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    type Entry = KEntry<M::Object>;

    /// Leaves the key's line (cancelled, timed out, or the pool closed): an object or room
    /// it was handed meanwhile goes to the next waiter.
    fn give_up(&self, id: usize) {
        let mut evicted = Vec::new();
        let mut woken = Woken::default();
        self.inner
            .table
            .give_up(self.key, self.slot, id, &mut evicted, &mut woken);
        woken.wake_all(Waker::wake);
        self.inner.close_all(evicted);
    }

    fn free_reservation(&self) {
        self.inner.forget(self.key, self.slot, Vec::new());
    }

    fn close_lent(&self, entry: Self::Entry, reason: CloseReason) {
        self.inner.close_lent(self.key, self.slot, entry, reason);
    }
}
