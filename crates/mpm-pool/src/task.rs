//! The maintenance task, shared by both pools: its life and its loop.
//!
//! At most one task per pool, marked running while it lives ([`Maintained::ticking`]) and
//! marked gone by a guard however it ends (returned, panicked, or dropped with its runtime),
//! so that the next acquire starts a new one on its own runtime ([`spawn_unless_running`]).
//! No deadline depends on the task; this only brings its work back.
//!
//! The loop ([`maintain`]) is the same for both pools: every tick of the coarse clock it
//! refreshes the clock and sweeps the waiters whose wake time has come ([`Maintained::tick`]),
//! and every pass interval (or when woken) it runs the pool's pass, ticking on beside it
//! however long the pass takes. What a pass does is the pool's own.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::clock::{Clock, Ms, NEVER};
use crate::stats::CloseReason;
use crate::unwind;

/// A pool with a maintenance task, a coarse clock and waiters the task sweeps.
pub(crate) trait Maintained: Send + Sync + 'static {
    /// Set while a maintenance task is running.
    fn ticking(&self) -> &AtomicBool;

    /// Called once the task has ended and `ticking` is clear: waiters that counted on the
    /// task are woken to use their own timers.
    fn task_ended(&self);

    /// The pool's clock.
    fn clock(&self) -> &Clock;

    /// When (in [`Ms`]) the earliest waiter must be woken by the sweep, or [`NEVER`]: a tick
    /// looks at the waiters only once this time has come. A waiter sets its wake time under
    /// its queue's lock, then lowers this to it.
    fn sweep_due(&self) -> &AtomicU64;

    /// Lowers [`Maintained::sweep_due`] to `at`, the wake time a waiter has just set under its
    /// queue's lock. A sweep that cleared the mark before that lock was taken has its clearing
    /// seen by this load, so skipping the store when the mark is already at or below `at`
    /// loses no wake-up.
    #[inline]
    fn lower_sweep_due(&self, at: Ms) {
        let due = self.sweep_due();
        if due.load(Ordering::Relaxed) > at {
            due.fetch_min(at, Ordering::AcqRel);
        }
    }

    /// Wakes the waiters whose wake time is at or before `now` (each then looks at its
    /// deadline); returns the earliest wake time of the others.
    fn sweep(&self, now: Ms) -> Ms;

    /// Whether the pool was closed (the task then ends).
    fn is_closed(&self) -> bool;

    /// Wakes the task for a pass now: shared with the task, which waits on it between ticks
    /// without holding the pool.
    fn wake(&self) -> &Arc<Notify>;

    /// Whether the task runs a pass as soon as it starts (else after the first interval).
    const PASS_AT_START: bool;

    /// How long the task waits between passes, given the configured interval.
    fn pass_interval(&self, interval: Duration) -> Duration {
        interval
    }

    /// One maintenance pass.
    fn pass(&self) -> impl Future<Output = ()> + Send + '_;

    /// A clock tick: refreshes the coarse clock and, once a waiter's wake time has come,
    /// wakes the waiters whose time it is to check their deadlines.
    fn tick(&self) {
        let now = self.clock().ticked();
        let due = self.sweep_due();
        if now >= due.load(Ordering::Acquire) {
            // Cleared first and lowered after: a waiter that publishes its wake time while
            // the sweep runs either is seen by it or lowers the mark after the clearing, so
            // no publication is lost.
            due.store(NEVER, Ordering::SeqCst);
            let next = self.sweep(now);
            due.fetch_min(next, Ordering::AcqRel);
        }
    }

    /// The pool's time on its hot paths: the coarse clock while ticks come on time, else the
    /// precise clock ([`Clock::fresh_coarse`]), so that lifetimes, idle timeouts and the
    /// skip-validation window do not stop with a stalled task.
    #[inline]
    fn now(&self) -> Ms {
        match self.clock().fresh_coarse() {
            Some(now) => now,
            None => self.now_late(),
        }
    }

    /// [`Maintained::now`] when the coarse clock is stale or off: the precise clock, which
    /// refreshes the coarse one for another tick. A task more than four ticks late may have
    /// stalled after waiters counted on its sweep (their deadlines more than two ticks away
    /// when they began to wait): this reader wakes them all, and each then finds the ticks
    /// late and arms its own timer (or, if the task was only late, counts on its sweep again).
    #[cold]
    fn now_late(&self) -> Ms {
        let clock = self.clock();
        if clock.tick().is_none() {
            return clock.precise();
        }
        let now = clock.refresh();
        if !self.ticks_on_time_ms(now) {
            self.wake_swept();
        }
        now
    }

    /// Wakes every waiter that counts on the sweep (see [`Maintained::now_late`]): called by
    /// a reader or a new waiter that finds the task late.
    #[cold]
    fn wake_swept(&self) {
        let due = self.sweep_due();
        if due.load(Ordering::Acquire) != NEVER {
            // As a tick's sweep (see `tick`), with every published wake time come.
            due.store(NEVER, Ordering::SeqCst);
            let next = self.sweep(NEVER - 1);
            due.fetch_min(next, Ordering::AcqRel);
        }
    }

    /// Whether a maintenance task is running and has ticked lately (within four ticks of
    /// `now`), so that waiters can count on its sweep. The time of its last tick, not the
    /// coarse clock, which precise reads move forward while the task is stalled.
    fn ticks_on_time_ms(&self, now: Ms) -> bool {
        let clock = self.clock();
        self.ticking().load(Ordering::Acquire)
            && now.saturating_sub(clock.ticked_ms()) <= clock.lag.saturating_mul(4)
    }

    /// [`Maintained::ticks_on_time_ms`] at an instant.
    fn ticks_on_time(&self, now: Instant) -> bool {
        self.ticks_on_time_ms(self.clock().at(now))
    }
}

/// Why a maintenance pass retires an idle object, if it does, written once for both pools'
/// passes: broken (the manager's synchronous check, `broken`, called only here), past its
/// lifetime (`expires`, [`NEVER`] without one), or unused for `idle_timeout` or longer while
/// more objects than the minimum to keep remain (`above_min`).
#[inline]
pub(crate) fn retire_idle(
    broken: impl FnOnce() -> Option<CloseReason>,
    now: Ms,
    expires: Ms,
    last_used: Ms,
    idle_timeout: Ms,
    above_min: bool,
) -> Option<CloseReason> {
    if let Some(reason) = broken() {
        Some(reason)
    } else if now >= expires {
        Some(CloseReason::Lifetime)
    } else if above_min && now.saturating_sub(last_used) >= idle_timeout {
        Some(CloseReason::Idle)
    } else {
        None
    }
}

/// Runs when the maintenance task ends for any reason: marks it gone.
pub(crate) struct TaskEnded<T: Maintained>(Weak<T>);

impl<T: Maintained> Drop for TaskEnded<T> {
    fn drop(&mut self) {
        if let Some(pool) = self.0.upgrade() {
            pool.ticking().store(false, Ordering::Release);
            pool.task_ended();
        }
    }
}

/// Spawns the pool's maintenance task ([`maintain`], a pass every `interval`) on the
/// caller's Tokio runtime unless one is running (or there is no runtime). The guard that
/// marks the task gone is made here, not in the task, so a task dropped before its first
/// poll (its runtime shut down first) still clears the mark.
pub(crate) fn spawn_unless_running<T: Maintained>(pool: &Arc<T>, interval: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if pool
        .ticking()
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
    {
        let ended = TaskEnded(Arc::downgrade(pool));
        runtime.spawn(maintain(Arc::downgrade(pool), interval, ended));
    }
}

/// The maintenance task: refreshes the coarse clock every tick and runs a pass every
/// interval (or when woken). It holds only a weak reference while it waits for its next tick
/// (and its wake-up, shared with the pool), so it never keeps a dropped pool alive, even if
/// its runtime is no longer driven (the pool's clock then also lets the heartbeat park).
async fn maintain<T: Maintained>(weak: Weak<T>, interval: Duration, ended: TaskEnded<T>) {
    let _ended = ended;
    let Some(inner) = weak.upgrade() else { return };
    let wake = Arc::clone(inner.wake());
    let mut next_pass = Instant::now();
    if !T::PASS_AT_START {
        next_pass += inner.pass_interval(interval);
    }
    drop(inner);
    let mut woken = false;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if inner.is_closed() {
            return;
        }
        let now = Instant::now();
        inner.tick();
        let tick = Duration::from_millis(inner.clock().lag.max(1));
        if woken || now >= next_pass {
            // The clock ticks and waiters are swept during a pass too, however long it takes.
            // The manager's calls catch their own panics; this catch keeps the task alive
            // through anything else.
            let mut pass = pin!(unwind::call_async("maintenance", inner.pass()));
            let mut ticker = pin!(async {
                loop {
                    tokio::time::sleep(tick).await;
                    inner.tick();
                }
            });
            poll_fn(|cx| {
                if pass.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                let _ = ticker.as_mut().poll(cx);
                Poll::Pending
            })
            .await;
            next_pass = Instant::now() + inner.pass_interval(interval);
        }
        let until = (Instant::now() + tick).min(next_pass);
        let notified = wake.notified();
        drop(inner);
        woken = tokio::time::timeout_at(until, notified).await.is_ok();
    }
}
