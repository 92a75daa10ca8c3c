//! The pool's maintenance: its passes (leaks, broken and expired idle objects, keepalive,
//! refilling `min_idle`) and its sweep of waiters; the task that ticks the clock and runs
//! them is the one both pools share ([`crate::task`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::inner::Inner;
use crate::backoff::{backoff, jitter};
use crate::clock::{Clock, Ms, NEVER, ms};
use crate::config::LeakReport;
use crate::deadline::{Deadline, bounded};
use crate::error::{Error, Stage};
use crate::guards::Reservation;
use crate::manager::Manager;
use crate::stats::CloseReason;
use crate::task::{Maintained, retire_idle, spawn_unless_running};
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
        spawn_unless_running(self, interval);
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
        let mut reasons = Vec::new();
        let retired = self.slots.lock().remove_idle(|e, size| {
            let reason = retire_idle(
                || self.broken(&mut e.obj),
                now,
                e.expires,
                e.last_used,
                idle_timeout,
                size > min_idle,
            );
            if let Some(reason) = reason {
                reasons.push((e.id, reason));
            }
            reason.is_some()
        });
        for entry in retired {
            let reason = reasons
                .iter()
                .find(|(id, _)| *id == entry.id)
                .map_or(CloseReason::Idle, |&(_, reason)| reason);
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
            if let Some(leaks) = self.metrics.as_ref().and_then(|m| m.leaks.as_ref()) {
                leaks.inc();
            }
            if let Some(hook) = &self.config.on_leak {
                let _ = unwind::call("on_leak", || hook(&report));
            }
        }
    }
}

impl<M: Manager> Maintained for Inner<M> {
    /// The first pass reports leaks and refills at once (a task restarted on a new runtime).
    const PASS_AT_START: bool = true;

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

    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn sweep_due(&self) -> &AtomicU64 {
        &self.sweep_due
    }

    fn sweep(&self, now: Ms) -> Ms {
        let (woken, next) = self.slots.lock().sweep(now);
        for waiter in woken {
            waiter.wake();
        }
        next
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn wake(&self) -> &Arc<Notify> {
        &self.wake
    }

    /// The configured interval, or a twentieth of the leak threshold if that is shorter.
    fn pass_interval(&self, interval: Duration) -> Duration {
        match self.config.leak_threshold {
            Some(t) => interval.min(t / 20),
            None => interval,
        }
        .max(Duration::from_millis(1))
    }

    fn pass(&self) -> impl Future<Output = ()> + Send + '_ {
        self.maintain_once()
    }
}
