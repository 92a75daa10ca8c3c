//! Drop guards of a keyed `get`: a waiter that goes away gives back what it was handed,
//! an object being validated is closed, a reserved place is freed.

use std::hash::Hash;
use std::task::Waker;

use super::inner::{Inner, KeySlot};
use super::manager::KeyedManager;
use super::state::KEntry;
use crate::stats::CloseReason;
use crate::waiters::Woken;

/// Takes a waiter out of its key's line on drop unless disarmed (`id` taken): an object or
/// room it was handed meanwhile goes to the next waiter (cancelled, timed out, or the pool
/// closed).
pub(super) struct Waiting<'a, K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    pub(super) inner: &'a Inner<K, M>,
    pub(super) key: &'a K,
    pub(super) slot: &'a KeySlot<K, M>,
    pub(super) id: Option<usize>,
}

impl<K, M> Drop for Waiting<'_, K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let mut evicted = Vec::new();
        let mut woken = Woken::default();
        self.inner
            .table
            .give_up(self.key, self.slot, id, &mut evicted, &mut woken);
        woken.wake_all(Waker::wake);
        self.inner.close_all(evicted);
    }
}

/// Holds a lent entry being validated; closes it if dropped while still holding it.
pub(super) struct Holding<'a, K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    pub(super) inner: &'a Inner<K, M>,
    pub(super) key: &'a K,
    pub(super) slot: &'a KeySlot<K, M>,
    pub(super) entry: Option<KEntry<M::Object>>,
    /// Why the entry is closed if the guard still holds it when dropped.
    pub(super) reason: CloseReason,
}

impl<K, M> Drop for Holding<'_, K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.inner
                .close_lent(self.key, self.slot, entry, self.reason);
        }
    }
}

/// Frees a reserved place if the creation fails or is cancelled.
pub(super) struct Reservation<'a, K: Clone + Eq + Hash + Send + Sync + 'static, M: KeyedManager<K>>
{
    pub(super) inner: &'a Inner<K, M>,
    pub(super) key: &'a K,
    pub(super) slot: &'a KeySlot<K, M>,
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static, M: KeyedManager<K>> Drop
    for Reservation<'_, K, M>
{
    fn drop(&mut self) {
        self.inner.forget(self.key, self.slot, Vec::new());
    }
}
