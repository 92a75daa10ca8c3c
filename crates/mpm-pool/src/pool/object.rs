//! [`Object`]: an object lent out by a [`Pool`](crate::Pool), returned when dropped.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::inner::{Entry, Inner};
use crate::manager::Manager;
use crate::stats::CloseReason;

/// When a lease started, for the time-in-use histogram: a raw reading of the pool's clock
/// ([`Clock::raw`](crate::clock::Clock::raw)).
pub(super) type Timer = u64;

/// An object lent out by a [`Pool`](super::Pool); it goes back when dropped (synchronously, without
/// allocating). Dereferences to the manager's object.
pub struct Object<M: Manager> {
    pub(super) entry: Option<Box<Entry<M::Object>>>,
    /// When it was lent, if the pool records metrics.
    pub(super) timer: Option<Timer>,
    pub(super) pool: Arc<Inner<M>>,
    pub(super) discard: bool,
}

impl<M: Manager> Object<M> {
    /// Marks the object broken: it is closed instead of returned to the pool.
    pub fn discard(this: &mut Self) {
        this.discard = true;
    }

    /// Takes the object out of the pool for good; the pool makes room for a new one.
    pub fn take(mut this: Self) -> Option<M::Object> {
        let entry = this.entry.take()?;
        let pool = &this.pool;
        if let Some(leases) = &pool.leases {
            leases.lock().remove(&entry.id);
        }
        let waiter = pool.slots.lock().forget_lent();
        if let Some(waiter) = waiter {
            waiter.wake();
        }
        if let Some(m) = &pool.metrics {
            m.closed(CloseReason::Taken);
        }
        pool.after_close();
        Some(entry.obj)
    }

    /// The object's id within its pool.
    pub fn id(this: &Self) -> u64 {
        this.entry.as_ref().map_or(0, |e| e.id)
    }
}

impl<M: Manager> Drop for Object<M> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.pool.release(entry, self.timer, self.discard);
        }
    }
}

impl<M: Manager> Deref for Object<M> {
    type Target = M::Object;
    fn deref(&self) -> &M::Object {
        match &self.entry {
            Some(e) => &e.obj,
            None => unreachable!("an Object holds its entry until dropped"),
        }
    }
}

impl<M: Manager> DerefMut for Object<M> {
    fn deref_mut(&mut self) -> &mut M::Object {
        match &mut self.entry {
            Some(e) => &mut e.obj,
            None => unreachable!("an Object holds its entry until dropped"),
        }
    }
}

impl<M: Manager> fmt::Debug for Object<M>
where
    M::Object: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object")
            .field("object", &**self)
            .finish_non_exhaustive()
    }
}
