//! The keyed pool's shared state ([`Inner`]): lending, giving back, closing, status.

use std::future::{Future, poll_fn};
use std::hash::Hash;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::KeyedStatus;
use super::config::KeyedConfig;
use super::guards::Waiting;
use super::locks::ParkingLot;
use super::maintenance::maintain;
use super::manager::KeyedManager;
use super::object::KeyedObject;
use super::state::{Evicted, Grant, KEntry, Look, Slot, Table};
use crate::error::{Error, Stage};
use crate::metrics::KeyedMetrics;
use crate::stats::CloseReason;
use crate::task::{Maintained, spawn_unless_running};
use crate::unwind;
use crate::waiters::Woken;

/// A key's state, as the pool keeps it.
pub(super) type KeySlot<K, M> = Slot<<M as KeyedManager<K>>::Object, Waker, ParkingLot>;

pub(super) struct Inner<K, M: KeyedManager<K>> {
    pub(super) manager: M,
    pub(super) config: KeyedConfig,
    pub(super) table: Table<K, M::Object, Waker, ParkingLot>,
    pub(super) metrics: Option<KeyedMetrics>,
    /// Stops the maintenance task (on close, and when the pool is dropped).
    pub(super) stop: Arc<Notify>,
    /// A maintenance task is running: set by whoever spawns one, cleared when it ends for
    /// any reason (its runtime shut down, the pool closed); a `get` that finds it clear
    /// starts a new one on its own runtime.
    pub(super) ticking: AtomicBool,
}

impl<K, M: KeyedManager<K>> Drop for Inner<K, M> {
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

impl<K, M> Inner<K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    /// Starts the maintenance task on the caller's runtime unless one is running (or the
    /// pool is closed, or maintenance is off, or there is no runtime): at build, and from a
    /// `get` that finds the task gone, so that a pool built in one runtime and used from
    /// another after the first shut down gets its maintenance back.
    pub(super) fn ensure_maintenance(self: &Arc<Self>) {
        let Some(interval) = self.config.maintenance_interval else {
            return;
        };
        if self.table.is_closed() {
            return;
        }
        let stop = Arc::clone(&self.stop);
        spawn_unless_running(self, |weak, ended| maintain(weak, stop, interval, ended));
    }

    /// The acquire deadline passed during `stage`: counted as an acquire timeout.
    pub(super) fn acquire_timed_out(
        &self,
        stage: Stage,
        timeout: Option<Duration>,
    ) -> Error<M::Error> {
        if let Some(m) = &self.metrics {
            m.timeout(Stage::Acquire);
        }
        Error::Timeout {
            stage,
            timeout: timeout.unwrap_or_default(),
        }
    }

    pub(super) fn status(&self) -> KeyedStatus {
        let c = self.table.counts();
        KeyedStatus {
            keys: c.keys,
            total: c.total,
            idle: c.idle,
            in_use: c.total.saturating_sub(c.idle),
            waiting: c.waiting,
        }
    }

    /// Closes idle objects unused for `idle_for` or longer (none if `None`) and drops keys
    /// left empty; returns how many it closed.
    pub(super) fn evict_idle(&self, idle_for: Option<Duration>) -> usize {
        let mut evicted = Vec::new();
        let mut woken = Woken::default();
        let n = self
            .table
            .evict_idle(Instant::now(), idle_for, &mut evicted, &mut woken);
        woken.wake_all(Waker::wake);
        self.close_all(evicted);
        n
    }

    /// One maintenance pass: idle objects past the idle timeout, then empty keys.
    pub(super) fn maintain_once(&self) -> usize {
        self.evict_idle(self.config.idle_timeout)
    }

    /// Waits in `key`'s line as waiter `id` until it is handed an object or room (or the
    /// pool closes, or `deadline` passes): the hand-off of the waiter queue both pools share.
    pub(super) async fn wait(
        &self,
        key: &K,
        slot: &KeySlot<K, M>,
        id: usize,
        deadline: Option<Instant>,
        timeout: Option<Duration>,
    ) -> Result<Grant<M::Object>, Error<M::Error>> {
        let mut waiting = Waiting {
            inner: self,
            key,
            slot,
            id: Some(id),
        };
        let mut timer = pin!(deadline.map(tokio::time::sleep_until));
        let mut first = true;
        poll_fn(|cx| {
            if first {
                // Its waker went into the line with it: a grant (or the close) since then has
                // woken it already, so the first look needs no lock.
                first = false;
            } else {
                match self
                    .table
                    .look(slot, id, |w| w.will_wake(cx.waker()), || cx.waker().clone())
                {
                    Look::Granted(grant) => {
                        waiting.id = None;
                        return Poll::Ready(Ok(grant));
                    }
                    // The guard takes the waiter out of its line.
                    Look::Closed => return Poll::Ready(Err(Error::Closed)),
                    Look::Pending => {}
                }
            }
            if let Some(sleep) = timer.as_mut().as_pin_mut()
                && sleep.poll(cx).is_ready()
            {
                // A grant may have been handed over just now: take it rather than waste it.
                waiting.id = None;
                let grant = self.table.cancel(key, slot, id);
                return Poll::Ready(grant.ok_or(Error::Timeout {
                    stage: Stage::Acquire,
                    timeout: timeout.unwrap_or_default(),
                }));
            }
            Poll::Pending
        })
        .await
    }

    pub(super) fn lend(
        self: &Arc<Self>,
        key: K,
        slot: KeySlot<K, M>,
        entry: KEntry<M::Object>,
    ) -> KeyedObject<K, M> {
        KeyedObject {
            key,
            slot,
            entry: Some(entry),
            pool: Arc::clone(self),
            discard: false,
        }
    }

    pub(super) fn release(
        &self,
        key: &K,
        slot: &KeySlot<K, M>,
        mut entry: KEntry<M::Object>,
        discard: bool,
    ) {
        let broken_reason = if discard {
            Some(CloseReason::Discarded)
        } else {
            match unwind::call("is_broken", || self.manager.is_broken(key, &mut entry.obj)) {
                Ok(false) => None,
                Ok(true) => Some(CloseReason::Broken),
                Err(_) => Some(CloseReason::Panicked),
            }
        };
        if let Some(reason) = broken_reason {
            self.close_lent(key, slot, entry, reason);
            return;
        }
        // Read before the lock, to keep the key's critical section short.
        entry.last_used = Instant::now();
        let mut evicted = Vec::new();
        let mut woken = Woken::default();
        self.table
            .release(key, slot, entry, &mut evicted, &mut woken);
        woken.wake_all(Waker::wake);
        if !evicted.is_empty() {
            self.close_all(evicted);
        }
    }

    /// A lent object (or a reserved place, with no entry) leaves the pool.
    pub(super) fn forget(&self, key: &K, slot: &KeySlot<K, M>, mut evicted: Evicted<K, M::Object>) {
        let mut woken = Woken::default();
        self.table.forget(key, slot, &mut evicted, &mut woken);
        woken.wake_all(Waker::wake);
        self.close_all(evicted);
    }

    pub(super) fn close_lent(
        &self,
        key: &K,
        slot: &KeySlot<K, M>,
        entry: KEntry<M::Object>,
        reason: CloseReason,
    ) {
        self.forget(key, slot, vec![(key.clone(), entry, reason)]);
    }

    pub(super) fn close_all(&self, evicted: Evicted<K, M::Object>) {
        for (key, e, reason) in evicted {
            if let Some(m) = &self.metrics {
                m.closed(reason);
            }
            // A panic in `close` has already dropped the object: nothing more to do.
            let _ = unwind::call("close", || self.manager.close(&key, e.obj));
        }
    }
}

impl<K, M> Maintained for Inner<K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    fn ticking(&self) -> &AtomicBool {
        &self.ticking
    }
}
