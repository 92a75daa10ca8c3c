//! The keyed pool's shared state ([`Inner`]): lending, giving back, closing, status.

use std::future::{Future, poll_fn};
use std::hash::Hash;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::task::{Poll, Waker};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::KeyedStatus;
use super::config::KeyedConfig;
use super::guards::Waiting;
use super::maintenance::maintain;
use super::manager::KeyedManager;
use super::object::KeyedObject;
use super::state::{
    Evicted, Grant, KEntry, State, cancel, dispatch, forget_one, hand_to_line, retain_keys,
};
use crate::error::{Error, Stage};
use crate::metrics::KeyedMetrics;
use crate::stats::CloseReason;
use crate::task::{Maintained, spawn_unless_running};
use crate::unwind;
use crate::waiters::Woken;

pub(super) struct Inner<K, M: KeyedManager<K>> {
    pub(super) manager: M,
    pub(super) config: KeyedConfig,
    pub(super) state: Mutex<State<K, M::Object, Waker>>,
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
        if self.state.lock().closed {
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
        let s = self.state.lock();
        let idle = s.keys.values().map(|k| k.idle.len()).sum();
        KeyedStatus {
            keys: s.keys.values().filter(|k| k.size > 0).count(),
            total: s.total,
            idle,
            in_use: s.total.saturating_sub(idle),
            waiting: s.waiting(),
        }
    }

    pub(super) fn evict_idle(&self, idle_for: Duration) -> usize {
        let now = Instant::now();
        let mut evicted = Vec::new();
        let mut woken = Woken::default();
        {
            let mut s = self.state.lock();
            let mut removed = 0;
            for (key, slots) in s.keys.iter_mut() {
                while slots
                    .idle
                    .front()
                    .is_some_and(|e| now.saturating_duration_since(e.last_used) >= idle_for)
                {
                    if let Some(e) = slots.idle.pop_front() {
                        slots.size -= 1;
                        removed += 1;
                        evicted.push((key.clone(), e, CloseReason::Idle));
                    }
                }
            }
            s.total -= removed;
            retain_keys(&mut s);
            dispatch(&mut s, &self.config, None, &mut evicted, &mut woken);
        }
        woken.wake_all(Waker::wake);
        let n = evicted
            .iter()
            .filter(|(_, _, r)| *r == CloseReason::Idle)
            .count();
        self.close_all(evicted);
        n
    }

    /// One maintenance pass: idle objects past the idle timeout, then empty keys.
    pub(super) fn maintain_once(&self) -> usize {
        match self.config.idle_timeout {
            Some(idle_for) => self.evict_idle(idle_for),
            None => {
                {
                    let mut s = self.state.lock();
                    retain_keys(&mut s);
                }
                self.status();
                0
            }
        }
    }

    /// Waits in `key`'s line as waiter `id` until it is handed an object or room (or the
    /// pool closes, or `deadline` passes): the hand-off of the waiter queue both pools share.
    pub(super) async fn wait(
        &self,
        key: &K,
        id: usize,
        deadline: Option<Instant>,
        timeout: Option<Duration>,
    ) -> Result<Grant<M::Object>, Error<M::Error>> {
        let mut waiting = Waiting {
            inner: self,
            key,
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
                let mut s = self.state.lock();
                if let Some(grant) = s.waiters.granted(id) {
                    waiting.id = None;
                    return Poll::Ready(Ok(grant));
                }
                if s.closed {
                    // The guard takes the waiter out of its line.
                    return Poll::Ready(Err(Error::Closed));
                }
                s.waiters
                    .set_waker(id, |w| w.will_wake(cx.waker()), || cx.waker().clone());
            }
            if let Some(sleep) = timer.as_mut().as_pin_mut()
                && sleep.poll(cx).is_ready()
            {
                // A grant may have been handed over just now: take it rather than waste it.
                waiting.id = None;
                let grant = cancel(&mut self.state.lock(), &self.config, key, id);
                return Poll::Ready(grant.ok_or(Error::Timeout {
                    stage: Stage::Acquire,
                    timeout: timeout.unwrap_or_default(),
                }));
            }
            Poll::Pending
        })
        .await
    }

    pub(super) fn lend(self: &Arc<Self>, key: K, entry: KEntry<M::Object>) -> KeyedObject<K, M> {
        KeyedObject {
            key,
            entry: Some(entry),
            pool: Arc::clone(self),
            discard: false,
        }
    }

    pub(super) fn release(&self, key: &K, mut entry: KEntry<M::Object>, discard: bool) {
        let broken_reason = if discard {
            Some(CloseReason::Discarded)
        } else {
            match unwind::call("is_broken", || self.manager.is_broken(key, &mut entry.obj)) {
                Ok(false) => None,
                Ok(true) => Some(CloseReason::Broken),
                Err(_) => Some(CloseReason::Panicked),
            }
        };
        let broken = broken_reason.is_some();
        if !broken {
            // Read before the lock, to keep the state's critical section short.
            entry.last_used = Instant::now();
        }
        let mut evicted = Vec::new();
        let mut woken = Woken::default();
        {
            let mut s = self.state.lock();
            let mut local = None;
            if broken || s.closed {
                forget_one(&mut s, &self.config, key);
                let reason = broken_reason.unwrap_or(CloseReason::Shutdown);
                evicted.push((key.clone(), entry, reason));
            } else {
                let entry = match hand_to_line(&mut s, &self.config, key, entry, &mut woken) {
                    Ok(()) => {
                        drop(s);
                        woken.wake_all(Waker::wake);
                        return;
                    }
                    Err(entry) => entry,
                };
                match s.keys.get_mut(key) {
                    Some(slots) => {
                        slots.idle.push_back(entry);
                        if !slots.waiters.is_empty() {
                            local = Some(key);
                        }
                    }
                    None => evicted.push((key.clone(), entry, CloseReason::Shutdown)),
                }
            }
            dispatch(&mut s, &self.config, local, &mut evicted, &mut woken);
        }
        woken.wake_all(Waker::wake);
        self.close_all(evicted);
    }

    pub(super) fn close_lent(&self, key: &K, entry: KEntry<M::Object>, reason: CloseReason) {
        let mut evicted = vec![(key.clone(), entry, reason)];
        let mut woken = Woken::default();
        {
            let mut s = self.state.lock();
            forget_one(&mut s, &self.config, key);
            dispatch(&mut s, &self.config, None, &mut evicted, &mut woken);
        }
        woken.wake_all(Waker::wake);
        self.close_all(evicted);
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
