//! Drop guards of a keyed `get`: a waiter that goes away gives back what it was handed,
//! an object being validated is closed, a reserved place is freed.

use std::hash::Hash;

use tokio::sync::oneshot;

use super::inner::Inner;
use super::manager::KeyedManager;
use super::state::{Grant, KEntry, dispatch, forget_one};
use crate::stats::CloseReason;

/// Gives a grant back if the waiting caller goes away (cancelled or timed out).
pub(super) struct Waiting<'a, K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    pub(super) inner: &'a Inner<K, M>,
    pub(super) key: &'a K,
    pub(super) rx: Option<oneshot::Receiver<Grant<M::Object>>>,
}

impl<K, M> Drop for Waiting<'_, K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        // After `close`, no grant can arrive; one that arrived before is taken back. The
        // waiter's entry goes when it reaches the head of its key's line (its sender
        // reports closed) or at a maintenance pass.
        rx.close();
        let Ok(grant) = rx.try_recv() else { return };
        let mut evicted = Vec::new();
        {
            let mut s = self.inner.state.lock();
            let mut local = None;
            match grant {
                Grant::Object(e) => match s.keys.get_mut(self.key) {
                    Some(slots) => {
                        slots.idle.push_front(e);
                        local = Some(self.key);
                    }
                    None => evicted.push((self.key.clone(), e, CloseReason::Shutdown)),
                },
                Grant::Create => forget_one(&mut s, &self.inner.config, self.key),
            }
            dispatch(&mut s, &self.inner.config, local, &mut evicted);
        }
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
            self.inner.close_lent(self.key, entry, self.reason);
        }
    }
}

/// Frees a reserved place if the creation fails or is cancelled.
pub(super) struct Reservation<'a, K: Clone + Eq + Hash + Send + Sync + 'static, M: KeyedManager<K>>
{
    pub(super) inner: &'a Inner<K, M>,
    pub(super) key: &'a K,
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static, M: KeyedManager<K>> Drop
    for Reservation<'_, K, M>
{
    fn drop(&mut self) {
        let mut evicted = Vec::new();
        {
            let mut s = self.inner.state.lock();
            forget_one(&mut s, &self.inner.config, self.key);
            dispatch(&mut s, &self.inner.config, None, &mut evicted);
        }
        self.inner.close_all(evicted);
    }
}
