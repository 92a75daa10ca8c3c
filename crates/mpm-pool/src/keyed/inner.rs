//! The keyed pool's shared state ([`Inner`]): lending, giving back, closing, status.

use std::future::{Future, poll_fn};
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Poll, Waker};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use tokio::sync::Notify;

use super::KeyedStatus;
use super::config::KeyedConfig;
use super::guards::OnKey;
use super::locks::ParkingLot;
use super::manager::KeyedManager;
use super::object::KeyedObject;
use super::state::{Evicted, Grant, KEntry, Look, Slot, Table};
use crate::clock::{Clock, Ms, NEVER, Since, ms};
use crate::deadline::{Deadline, start_wait, sweep_again_at, sweep_wake_at, timer_at};
use crate::error::{Error, Stage};
use crate::guards::Queued;
use crate::metrics::PoolMetrics;
use crate::stats::CloseReason;
use crate::task::{Maintained, retire_idle, spawn_unless_running};
use crate::unwind;
use crate::waiters::Woken;

/// A key's state, as the pool keeps it.
pub(super) type KeySlot<K, M> = Slot<<M as KeyedManager<K>>::Object, Waker, ParkingLot>;

pub(super) struct Inner<K, M: KeyedManager<K>> {
    pub(super) manager: M,
    pub(super) config: KeyedConfig,
    pub(super) table: Table<K, M::Object, Waker, ParkingLot>,
    pub(super) metrics: Option<PoolMetrics>,
    /// Wakes the maintenance task (the pool closed); shared with the task, which waits on it
    /// without holding the pool.
    pub(super) wake: Arc<Notify>,
    /// A maintenance task is running: set by whoever spawns one, cleared when it ends for
    /// any reason (its runtime shut down, the pool closed, the pool dropped); a `get` that
    /// finds it clear starts a new one on its own runtime. While it is clear, waits use
    /// their own timers.
    pub(super) ticking: AtomicBool,
    /// The pool's clock: coarse (ticked by the maintenance task) while the task runs.
    pub(super) clock: Clock,
    /// When the earliest waiter in line must be woken by the sweep (the plain pool's).
    pub(super) sweep_due: CachePadded<AtomicU64>,
    /// The skip-validation window in milliseconds.
    pub(super) skip_window: Ms,
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
        spawn_unless_running(self, interval);
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

    /// Closes idle objects unused for `idle_for` or longer (none if `None`), and those the
    /// manager's synchronous check says are broken if `check` (a maintenance pass, as the
    /// plain pool's), and drops keys left empty; returns how many it closed.
    pub(super) fn evict_idle(&self, idle_for: Option<Duration>, check: bool) -> usize {
        let mut evicted = Vec::new();
        let mut woken = Woken::default();
        let now = self.clock.precise();
        let idle_for = idle_for.map_or(NEVER, ms);
        let n = self.table.evict_idle(
            |key, e| {
                let broken = || {
                    if !check {
                        return None;
                    }
                    match unwind::call("is_broken", || self.manager.is_broken(key, &mut e.obj)) {
                        Ok(false) => None,
                        Ok(true) => Some(CloseReason::Broken),
                        Err(_) => Some(CloseReason::Panicked),
                    }
                };
                retire_idle(broken, now, NEVER, e.last_used, idle_for, true)
            },
            &mut evicted,
            &mut woken,
        );
        woken.wake_all(Waker::wake);
        self.close_all(evicted);
        n
    }

    /// One maintenance pass: idle objects broken or past the idle timeout, then empty keys.
    pub(super) fn maintain_once(&self) -> usize {
        self.evict_idle(self.config.idle_timeout, true)
    }

    /// Waits in `key`'s line as waiter `id` until it is handed an object or room (or the
    /// pool closes, or the deadline passes): the hand-off of the waiter queue both pools
    /// share, bounded as the plain pool's waits are: by the maintenance task's sweep while
    /// the deadline is more than two ticks away and the task ticks on time, else by a timer.
    pub(super) async fn wait(
        &self,
        key: &K,
        slot: &KeySlot<K, M>,
        id: usize,
        deadline: &mut Deadline,
        timeout: Option<Duration>,
        waited_since: &mut Option<Since>,
    ) -> Result<Grant<M::Object>, Error<M::Error>> {
        let mut waiting = Queued {
            place: OnKey {
                inner: self,
                key,
                slot,
            },
            id: Some(id),
        };
        let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
        let stats = self.metrics.is_some();
        let fresh = !deadline.started();
        let start = (timeout.is_some() || stats)
            .then(|| start_wait(&self.clock, deadline, stats, waited_since));
        if let (Some(start), Some(timeout)) = (start, timeout) {
            match sweep_wake_at(self, start, timeout, fresh, deadline) {
                Some(at) => {
                    // Set after the waiter joined its line: a grant that came meanwhile
                    // makes this moot, and the waker is in place already.
                    self.table.set_wake_at(slot, id, at);
                    self.lower_sweep_due(at);
                    // A task that ended before this waiter published did not wake it.
                    if !self.ticking.load(Ordering::Acquire)
                        && let Some(d) = deadline.instant()
                    {
                        timer = Some(timer_at(d));
                    }
                }
                None => {
                    if let Some(d) = deadline.instant() {
                        timer = Some(timer_at(d));
                    }
                }
            }
        }
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
                if timer.is_none()
                    && let Some(d) = deadline.instant()
                {
                    // Woken by the sweep (near the deadline), by the task ending, or for no
                    // reason: arm the timer, or ask the sweep again.
                    match sweep_again_at(self, d) {
                        None => timer = Some(timer_at(d)),
                        Some(at) => {
                            self.table.set_wake_at(slot, id, at);
                            self.lower_sweep_due(at);
                        }
                    }
                }
            }
            if let Some(sleep) = timer.as_mut()
                && sleep.as_mut().poll(cx).is_ready()
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

    /// Lends `entry`; records the wait (0 if the caller did not wait) and starts the
    /// lease's timer if metrics are on.
    pub(super) fn lend(
        self: &Arc<Self>,
        key: K,
        slot: KeySlot<K, M>,
        entry: KEntry<M::Object>,
        waited_since: Option<Since>,
    ) -> KeyedObject<K, M> {
        let timer = self
            .metrics
            .as_ref()
            .map(|m| m.lent(&self.clock, waited_since));
        KeyedObject {
            key,
            slot,
            entry: Some(entry),
            pool: Arc::clone(self),
            discard: false,
            timer,
        }
    }

    pub(super) fn release(
        &self,
        key: &K,
        slot: &KeySlot<K, M>,
        mut entry: KEntry<M::Object>,
        discard: bool,
        timer: Option<u64>,
    ) {
        if let (Some(m), Some(t)) = (&self.metrics, timer) {
            m.returned(&self.clock, t);
        }
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
        entry.last_used = self.now();
        entry.order = self.clock.raw();
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
    const PASS_AT_START: bool = false;

    fn ticking(&self) -> &AtomicBool {
        &self.ticking
    }

    /// Wakes the waiters in line, which then use their own timers.
    fn task_ended(&self) {
        let mut woken = Woken::default();
        self.table.wake_all(&mut woken);
        woken.wake_all(Waker::wake);
    }

    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn sweep_due(&self) -> &AtomicU64 {
        &self.sweep_due
    }

    fn sweep(&self, now: Ms) -> Ms {
        let mut woken = Woken::default();
        let next = self.table.sweep(now, &mut woken);
        woken.wake_all(Waker::wake);
        next
    }

    fn is_closed(&self) -> bool {
        self.table.is_closed()
    }

    fn wake(&self) -> &Arc<Notify> {
        &self.wake
    }

    /// Each period is shortened by a random 0-10%, so that pools made together do not run
    /// their passes in step.
    fn pass_interval(&self, interval: Duration) -> Duration {
        crate::backoff::jitter(interval, 10)
    }

    async fn pass(&self) {
        self.maintain_once();
    }
}
