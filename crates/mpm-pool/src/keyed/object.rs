//! [`KeyedObject`]: an object lent by a [`KeyedPool`](super::KeyedPool), returned when dropped.

use std::fmt;
use std::hash::Hash;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::inner::{Inner, KeySlot};
use super::manager::KeyedManager;
use super::state::KEntry;

impl<K, M> fmt::Debug for KeyedObject<K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static + fmt::Debug,
    M: KeyedManager<K>,
    M::Object: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedObject")
            .field("key", &self.key)
            .field("object", &**self)
            .finish_non_exhaustive()
    }
}

/// An object lent by a [`KeyedPool`](super::KeyedPool); it goes back when dropped.
pub struct KeyedObject<K, M: KeyedManager<K>>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    pub(super) key: K,
    /// The key's state: its object goes back there without a lookup.
    pub(super) slot: KeySlot<K, M>,
    pub(super) entry: Option<KEntry<M::Object>>,
    pub(super) pool: Arc<Inner<K, M>>,
    pub(super) discard: bool,
    /// When the lease began, if metrics are on (for the time in use): a raw reading of the
    /// pool's clock.
    pub(super) timer: Option<u64>,
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static, M: KeyedManager<K>> KeyedObject<K, M> {
    /// The object's key.
    pub fn key(this: &Self) -> &K {
        &this.key
    }

    /// Marks the object broken: it is closed instead of returned.
    pub fn discard(this: &mut Self) {
        this.discard = true;
    }
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static, M: KeyedManager<K>> Drop for KeyedObject<K, M> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.pool
                .release(&self.key, &self.slot, entry, self.discard, self.timer);
        }
    }
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static, M: KeyedManager<K>> Deref for KeyedObject<K, M> {
    type Target = M::Object;
    fn deref(&self) -> &M::Object {
        match &self.entry {
            Some(e) => &e.obj,
            None => unreachable!("a KeyedObject holds its entry until dropped"),
        }
    }
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static, M: KeyedManager<K>> DerefMut
    for KeyedObject<K, M>
{
    fn deref_mut(&mut self) -> &mut M::Object {
        match &mut self.entry {
            Some(e) => &mut e.obj,
            None => unreachable!("a KeyedObject holds its entry until dropped"),
        }
    }
}
