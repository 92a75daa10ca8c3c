//! The maintenance task: the coarse clock's ticks, the sweep of waiters, and the passes
//! (leaks, broken and expired idle objects, keepalive, refilling `min_idle`).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use super::guards::Reservation;
use super::inner::Inner;
use crate::backoff::{backoff, jitter};
use crate::clock::{Ms, NEVER, ms};
use crate::config::{Config, LeakReport};
use crate::deadline::{Deadline, bounded};
use crate::error::{Error, Stage};
use crate::manager::Manager;
use crate::stats::CloseReason;
use crate::task::{Maintained, TaskEnded, spawn_unless_running};
use crate::unwind;

impl<M: Manager> Inner<M> {
    /// Starts the maintenance task on the caller's runtime unless one is running (or the
    /// pool is closed, or maintenance is off, or there is no runtime). Called at build and by
    /// an acquire that finds the task gone: a pool built in one runtime and used from another
    /// after the first shut down gets its maintenance back.
    pub(super) fn ensure_maintenance(self: &Arc<Self>) {
        let Some(interval) = self.config.maintenance else {
            return;
        };
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        spawn_unless_running(self, |weak, ended| maintain(weak, interval, ended));
    }

    /// Creates one idle object if fewer than `min_idle` are idle and there is room (it goes
    /// to the first waiter if someone waits). Returns whether it made one.
    pub(super) async fn refill_one(&self) -> Result<bool, Error<M::Error>> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(false);
        }
        if !self.slots.lock().reserve_for_idle(self.config.min_idle) {
            return Ok(false);
        }
        let reservation = Reservation(self);
        let entry = self.create_entry(&mut Deadline::new(None), None).await?;
        std::mem::forget(reservation);
        let put = self.slots.lock().created_idle(entry);
        match put {
            Err(entry) => {
                self.close_lent(entry, CloseReason::Shutdown);
                return Ok(false);
            }
            Ok(Some(waiter)) => waiter.wake(),
            Ok(None) => {}
        }
        if self.closed.load(Ordering::Acquire) {
            // Closed while creating: the new object must not outlive the pool.
            self.drain_idle();
            return Ok(false);
        }
        Ok(true)
    }

    /// One maintenance pass.
    pub(super) async fn maintain_once(&self) {
        let now = self.clock.precise();
        self.report_leaks(now);
        // Retire idle objects that broke while idle (the manager's cheap synchronous check,
        // such as a socket the server closed), or are past their lifetime or idle timeout
        // (never below min_idle). The refill below replaces them in this same pass.
        let min_idle = self.config.min_idle;
        let idle_timeout = self.config.idle_timeout.map_or(NEVER, ms);
        let mut broken = Vec::new();
        let retired = self.slots.lock().remove_idle(|e, size| {
            if let Some(reason) = self.broken(&mut e.obj) {
                broken.push((e.id, reason));
                return true;
            }
            now >= e.expires || (now.saturating_sub(e.last_used) >= idle_timeout && size > min_idle)
        });
        for entry in retired {
            let reason = if let Some(&(_, reason)) = broken.iter().find(|(id, _)| *id == entry.id) {
                reason
            } else if now >= entry.expires {
                CloseReason::Lifetime
            } else {
                CloseReason::Idle
            };
            self.close_object(entry, reason);
        }
        // Keepalive: validate objects idle for a (jittered) keepalive interval.
        if let Some(keepalive) = self.config.keepalive {
            self.keepalive(keepalive).await;
        }
        // Refill min_idle, unless creation failed recently: then wait out a backoff that
        // grows with each failed pass, so that a down server is not hammered.
        let (failures, retry_at) = *self.refill_backoff.lock();
        if failures == 0 || now >= retry_at {
            loop {
                match self.refill_one().await {
                    Ok(true) => *self.refill_backoff.lock() = (0, 0),
                    Ok(false) => break,
                    Err(_) => {
                        let failures = failures.saturating_add(1);
                        let pause =
                            backoff(self.config.backoff_min, self.config.backoff_max, failures);
                        *self.refill_backoff.lock() =
                            (failures, self.clock.precise().saturating_add(ms(pause)));
                        break;
                    }
                }
            }
        }
    }

    pub(super) async fn keepalive(&self, keepalive: Duration) {
        let idle = self.slots.lock().idle();
        for _ in 0..idle {
            let now = self.clock.precise();
            let due = ms(jitter(keepalive, 10));
            let taken = self
                .slots
                .lock()
                .take_where(|e| now.saturating_sub(e.last_alive) >= due);
            let Some(mut entry) = taken else { return };
            let mut no_deadline = Deadline::new(None);
            let obj = &mut entry.obj;
            match bounded(
                unwind::call_async("validate", async { self.manager.validate(obj).await }),
                self.config.validate_timeout,
                &mut no_deadline,
            )
            .await
            {
                Ok(Err(_)) => self.close_lent(entry, CloseReason::Panicked),
                Ok(Ok(Ok(()))) => {
                    entry.last_alive = self.clock.precise();
                    self.put_back(entry);
                }
                Ok(Ok(Err(_))) => self.close_lent(entry, CloseReason::Invalid),
                Err(_) => {
                    self.count_timeout(Stage::Validate);
                    self.close_lent(entry, CloseReason::Timeout);
                }
            }
        }
    }

    pub(super) fn report_leaks(&self, now: Ms) {
        let (Some(threshold), Some(leases)) = (self.config.leak_threshold, &self.leases) else {
            return;
        };
        let threshold = ms(threshold);
        let mut found = Vec::new();
        for (id, lease) in leases.lock().iter_mut() {
            let held = now.saturating_sub(lease.since);
            // A lease's start comes from the coarse clock and may be early by `lag`.
            if !lease.reported && held.saturating_sub(self.clock.lag) >= threshold {
                lease.reported = true;
                found.push(LeakReport {
                    acquired_at: lease.at,
                    held_for: Duration::from_millis(held),
                    object_id: *id,
                });
            }
        }
        for report in found {
            tracing::warn!(
                acquired_at = %report.acquired_at,
                held_for = ?report.held_for,
                "pooled object held past the leak-detection threshold"
            );
            if let Some(m) = &self.metrics {
                m.leaks.inc();
            }
            if let Some(hook) = &self.config.on_leak {
                let _ = unwind::call("on_leak", || hook(&report));
            }
        }
    }

    /// A clock tick: refreshes the coarse clock and, once a waiter's wake time has come,
    /// wakes the waiters whose time it is to check their deadlines.
    pub(super) fn tick(&self) {
        self.clock.calibrate();
        let now = self.clock.precise();
        if now >= self.sweep_due.load(Ordering::Acquire) {
            let mut slots = self.slots.lock();
            let (woken, next) = slots.sweep(now);
            // Under the lock, as the waiters' publications, so none is lost.
            self.sweep_due.store(next, Ordering::Release);
            drop(slots);
            for waiter in woken {
                waiter.wake();
            }
        }
    }

    /// How long the maintenance task waits between passes.
    pub(super) fn pass_interval(&self, interval: Duration) -> Duration {
        match self.config.leak_threshold {
            Some(t) => interval.min(t / 20),
            None => interval,
        }
        .max(Duration::from_millis(1))
    }
}

/// How often the maintenance task refreshes the coarse clock: often enough for the
/// skip-validation window and leak detection to stay within a few percent.
pub(super) fn clock_tick(config: &Config) -> Duration {
    let mut tick = Duration::from_millis(100);
    if !config.skip_validation_within.is_zero() {
        tick = tick.min(config.skip_validation_within / 4);
    }
    if let Some(leak) = config.leak_threshold {
        tick = tick.min(leak / 20);
    }
    tick.max(Duration::from_millis(1))
}

/// The maintenance task: refreshes the coarse clock every tick and runs a pass every
/// interval (or when woken). It holds only a weak reference between ticks, so it never keeps
/// a dropped pool alive.
pub(super) async fn maintain<M: Manager>(
    weak: Weak<Inner<M>>,
    interval: Duration,
    ended: TaskEnded<Inner<M>>,
) {
    let _ended = ended;
    let mut next_pass = Instant::now();
    let mut woken = false;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        inner.tick();
        let tick = Duration::from_millis(inner.clock.lag.max(1));
        if woken || now >= next_pass {
            // The clock ticks and waiters are swept during a pass too, however long it takes.
            // The manager's calls catch their own panics; this catch keeps the task alive
            // through anything else.
            let mut pass = pin!(unwind::call_async("maintenance", inner.maintain_once()));
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
        let wake = inner.wake.notified();
        woken = tokio::time::timeout_at(until, wake).await.is_ok();
    }
}

impl<M: Manager> Maintained for Inner<M> {
    fn ticking(&self) -> &AtomicBool {
        &self.ticking
    }

    /// Wakes the swept waiters, which then use their own timers.
    fn task_ended(&self) {
        let woken = self.slots.lock().wake_all();
        for waiter in woken {
            waiter.wake();
        }
    }
}
