//! The acquisition path: a permit (waiting with the sweep or a timer), then an idle object
//! checked (recycle, validate) or a new one created.

use std::future::{Future, poll_fn};
use std::panic::Location;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::TryAcquireError;
use tokio::time::Instant;

use super::guards::{AbandonTrial, Checking, PermitGuard, Reservation, Waiting};
use super::inner::{Entry, Inner, Lease};
use super::maintenance::SWEEP_SHARDS;
use super::object::Object;

use crate::backoff::{backoff, jitter};
use crate::clock::{Ms, NEVER, ms};
use crate::deadline::{Deadline, Expired, bounded};
use crate::error::{Error, Stage};
use crate::manager::Manager;
use crate::slots::Take;
use crate::stats::CloseReason;
use crate::unwind;

impl<M: Manager> Inner<M> {
    pub(super) async fn acquire(
        self: &Arc<Self>,
        at: &'static Location<'static>,
        timeout: Option<Duration>,
    ) -> Result<Object<M>, Error<M::Error>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if self.config.maintenance.is_some() && !self.ticking.load(Ordering::Relaxed) {
            self.ensure_maintenance();
        }
        let mut deadline = Deadline::new(timeout);
        // Set when the caller had to wait (for a permit or a creation), for the histogram.
        let mut waited_since: Option<Instant> = None;
        match self.semaphore.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::Closed) => return Err(Error::Closed),
            Err(TryAcquireError::NoPermits) => {
                // The clock is read only if a timeout or the statistics need it.
                let start = (timeout.is_some() || self.metrics.is_some()).then(Instant::now);
                waited_since = start;
                self.waiting.fetch_add(1, Ordering::Relaxed);
                let _waiting = Waiting(&self.waiting);
                let permit = match start.zip(start.and_then(|start| deadline.at(start))) {
                    None => self.semaphore.acquire().await,
                    Some((start, d)) => match self.wait_permit(start, d).await {
                        Some(p) => p,
                        None => return Err(self.timed_out(Stage::Acquire, timeout)),
                    },
                };
                match permit {
                    Ok(p) => p.forget(),
                    Err(_) => return Err(Error::Closed),
                }
            }
        }
        let permit = PermitGuard(self);
        let mut failures = 0u32;
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            let now = self.clock.now();
            let taken = self.slots.lock().take(self.config.queue_mode);
            match taken {
                Take::Idle(mut entry) => {
                    if now >= entry.expires {
                        self.close_lent(entry, CloseReason::Lifetime);
                        continue;
                    }
                    // A cheap synchronous check catches objects that broke while idle (a
                    // closed socket), even within the skip-validation window.
                    match unwind::call("is_broken", || self.manager.is_broken(&mut entry.obj)) {
                        Ok(false) => {}
                        Ok(true) => {
                            self.close_lent(entry, CloseReason::Broken);
                            continue;
                        }
                        Err(panicked) => {
                            self.close_lent(entry, CloseReason::Panicked);
                            return Err(panicked.into());
                        }
                    }
                    let mut checking = Checking {
                        inner: self,
                        entry: Some(entry),
                    };
                    if self
                        .check(&mut checking, now, &mut deadline, timeout)
                        .await?
                        && let Some(entry) = checking.entry.take()
                    {
                        std::mem::forget(permit);
                        return Ok(self.lend(entry, waited_since, at, now));
                    }
                }
                Take::Reserved => {
                    let reservation = Reservation(self);
                    let started = *waited_since.get_or_insert_with(Instant::now);
                    deadline.at(started);
                    match self.create_entry(&mut deadline, timeout).await {
                        Ok(entry) => {
                            std::mem::forget(reservation);
                            self.slots.lock().created_lent();
                            std::mem::forget(permit);
                            let now = self.clock.precise();
                            return Ok(self.lend(entry, waited_since, at, now));
                        }
                        Err(Error::CircuitOpen { state, probe_in }) => {
                            // Wait for the breaker's probe, or until the deadline if that comes
                            // first (a caller that retries at once would only spin), then look
                            // again: an object may have come back meanwhile.
                            drop(reservation);
                            let now = Instant::now();
                            let refused = crate::breaker::Refused {
                                state,
                                probe_at: probe_in.map(|d| now + d),
                            };
                            let (Some(b), Some(d)) = (&self.config.breaker, deadline.at(now))
                            else {
                                return Err(Error::circuit_open(refused, now));
                            };
                            if tokio::time::timeout_at(d, b.wait(refused)).await.is_err() {
                                self.count_timeout(Stage::Acquire);
                                return Err(Error::circuit_open(refused, Instant::now()));
                            }
                        }
                        Err(e) => {
                            drop(reservation);
                            failures += 1;
                            let pause =
                                backoff(self.config.backoff_min, self.config.backoff_max, failures);
                            let now = Instant::now();
                            match (deadline.at(now), &e) {
                                (
                                    _,
                                    Error::Closed
                                    | Error::CircuitOpen { .. }
                                    | Error::Timeout { .. }
                                    | Error::ManagerPanicked { .. },
                                ) => {
                                    return Err(e);
                                }
                                (None, _) => return Err(e),
                                (Some(d), _) if now + pause >= d => return Err(e),
                                (Some(_), _) => tokio::time::sleep(pause).await,
                            }
                        }
                    }
                }
                Take::Full => {
                    // Only after a shrink, while lent objects above the new maximum are
                    // still out: wait a little for one to come back and be closed.
                    let pause = Duration::from_millis(5);
                    let now = Instant::now();
                    waited_since.get_or_insert(now);
                    if deadline.at(now).is_some_and(|d| now + pause >= d) {
                        return Err(self.timed_out(Stage::Acquire, timeout));
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Waits for a permit until `deadline` (`None`: timed out).
    ///
    /// With maintenance on, a wait sets no timer of its own until its deadline is within two
    /// clock ticks: it registers in the sweep list and says when it must be woken (`sweep_due`
    /// keeps the earliest such time); the maintenance task wakes the list on the first tick at
    /// or after that time; each waiter woken looks at the clock, and only a wait still
    /// unserved near its deadline arms a precise timer. Most waits are short, and registering
    /// (then cancelling) a timer per wait was most of the cost of a contended acquire; waking
    /// every waiter on every tick instead delayed the waiters being served.
    pub(super) async fn wait_permit(
        &self,
        start: Instant,
        deadline: Instant,
    ) -> Option<Result<tokio::sync::SemaphorePermit<'_>, tokio::sync::AcquireError>> {
        let mut acquire = pin!(self.semaphore.acquire());
        if let Some(tick) = self.clock.tick() {
            let margin = tick.saturating_mul(2);
            let wake_at = self.clock.at(deadline).saturating_sub(ms(margin));
            let mut now = start;
            // The sweep needs a live maintenance task: one that ended (its runtime shut down)
            // or fell behind by more than a few ticks (its runtime is stalled) leaves the wait
            // to its own timer.
            while now + margin < deadline && self.ticks_on_time(now) {
                let shard = fastrand::usize(..SWEEP_SHARDS);
                let mut sweep = pin!(self.sweep[shard].notified());
                let mut published = false;
                let got = poll_fn(|cx| {
                    if let Poll::Ready(p) = acquire.as_mut().poll(cx) {
                        return Poll::Ready(Some(p));
                    }
                    match sweep.as_mut().poll(cx) {
                        Poll::Ready(()) => Poll::Ready(None),
                        Poll::Pending => {
                            // Registered in the list by the poll above, and only then says
                            // when: a tick that takes this time wakes this waiter.
                            if !published {
                                published = true;
                                self.sweep_at(wake_at);
                            }
                            // A task that ended before this waiter joined the list did not
                            // wake it: look again.
                            if !self.ticking.load(Ordering::Acquire) {
                                return Poll::Ready(None);
                            }
                            Poll::Pending
                        }
                    }
                })
                .await;
                if let Some(p) = got {
                    return Some(p);
                }
                now = Instant::now();
            }
        }
        tokio::time::timeout_at(deadline, acquire).await.ok()
    }

    /// Whether a maintenance task is running and has ticked lately (within four ticks of
    /// `now`), so that waiters can count on its sweep.
    pub(super) fn ticks_on_time(&self, now: Instant) -> bool {
        self.ticking.load(Ordering::Acquire)
            && self.clock.at(now).saturating_sub(self.clock.now())
                <= self.clock.lag.saturating_mul(4)
    }

    /// Recycles a used entry and validates it unless it was alive recently. `Ok(true)`: hand
    /// it out; `Ok(false)`: it was closed, try the next one.
    pub(super) async fn check(
        &self,
        checking: &mut Checking<'_, M>,
        now: Ms,
        deadline: &mut Deadline,
        timeout: Option<Duration>,
    ) -> Result<bool, Error<M::Error>> {
        let Some(entry) = checking.entry.as_mut() else {
            return Ok(false);
        };
        if entry.dirty {
            let obj = &mut entry.obj;
            match bounded(
                unwind::call_async("recycle", async { self.manager.recycle(obj).await }),
                self.config.recycle_timeout,
                deadline,
            )
            .await
            {
                Ok(Ok(Ok(()))) => entry.dirty = false,
                Ok(Err(panicked)) => {
                    self.close_checking(checking, CloseReason::Panicked);
                    return Err(panicked.into());
                }
                Ok(Ok(Err(e))) => {
                    tracing::debug!(error = %e, "recycling a pooled object failed; closing it");
                    self.close_checking(checking, CloseReason::Invalid);
                    return Ok(false);
                }
                Err(Expired::Step) => {
                    self.count_timeout(Stage::Recycle);
                    self.close_checking(checking, CloseReason::Timeout);
                    return Ok(false);
                }
                Err(Expired::Deadline) => return Err(self.timed_out(Stage::Recycle, timeout)),
            }
        }
        let Some(entry) = checking.entry.as_mut() else {
            return Ok(false);
        };
        // The coarse clock may lag by `lag`: count that against the window.
        let idle_for = now
            .saturating_add(self.clock.lag)
            .saturating_sub(entry.last_alive);
        if idle_for >= self.skip_window {
            let obj = &mut entry.obj;
            match bounded(
                unwind::call_async("validate", async { self.manager.validate(obj).await }),
                self.config.validate_timeout,
                deadline,
            )
            .await
            {
                Ok(Ok(Ok(()))) => entry.last_alive = now,
                Ok(Err(panicked)) => {
                    self.close_checking(checking, CloseReason::Panicked);
                    return Err(panicked.into());
                }
                Ok(Ok(Err(e))) => {
                    tracing::debug!(error = %e, "validating a pooled object failed; closing it");
                    self.close_checking(checking, CloseReason::Invalid);
                    return Ok(false);
                }
                Err(Expired::Step) => {
                    self.count_timeout(Stage::Validate);
                    self.close_checking(checking, CloseReason::Timeout);
                    return Ok(false);
                }
                Err(Expired::Deadline) => return Err(self.timed_out(Stage::Validate, timeout)),
            }
        }
        Ok(true)
    }

    pub(super) fn close_checking(&self, checking: &mut Checking<'_, M>, reason: CloseReason) {
        if let Some(entry) = checking.entry.take() {
            self.close_lent(entry, reason);
        }
    }

    /// Creates one entry (the caller holds a reservation), through the circuit breaker.
    pub(super) async fn create_entry(
        &self,
        deadline: &mut Deadline,
        timeout: Option<Duration>,
    ) -> Result<Entry<M::Object>, Error<M::Error>> {
        let breaker = self.config.breaker.as_ref();
        if let Some(b) = breaker
            && let Err(refused) = b.begin()
        {
            return Err(Error::circuit_open(refused, Instant::now()));
        }
        let abandon = breaker.map(AbandonTrial);
        let started = Instant::now();
        let created = bounded(
            unwind::call_async("create", async { self.manager.create().await }),
            self.config.create_timeout,
            deadline,
        )
        .await;
        std::mem::forget(abandon);
        let obj = match created {
            Ok(Ok(Ok(obj))) => {
                if let Some(b) = breaker {
                    b.record_success();
                }
                obj
            }
            Ok(Err(panicked)) => {
                if let Some(b) = breaker {
                    b.record_failure();
                }
                if let Some(m) = &self.metrics {
                    m.create_errors.inc();
                }
                return Err(panicked.into());
            }
            Ok(Ok(Err(e))) => {
                if let Some(b) = breaker {
                    b.record_failure();
                }
                if let Some(m) = &self.metrics {
                    m.create_errors.inc();
                }
                tracing::debug!(error = %e, "creating a pooled object failed");
                return Err(Error::Create(e));
            }
            Err(which) => {
                if let Some(b) = breaker {
                    match which {
                        // The create's own timeout: the server is too slow, a failure.
                        Expired::Step => b.record_failure(),
                        // The caller's deadline cut it short: that says nothing about the
                        // server, so a probe cut short must not double the cool-down.
                        Expired::Deadline => b.record_abandoned(),
                    }
                }
                return Err(match which {
                    Expired::Step => {
                        self.count_timeout(Stage::Create);
                        Error::CreateTimeout(self.config.create_timeout.unwrap_or_default())
                    }
                    Expired::Deadline => self.timed_out(Stage::Create, timeout),
                });
            }
        };
        let finished = Instant::now();
        if let Some(m) = &self.metrics {
            m.created.inc();
            m.create_time.record_duration(finished - started);
        }
        let now = self.clock.at(finished);
        Ok(Entry {
            obj,
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            expires: self
                .config
                .max_lifetime
                .map_or(NEVER, |l| now.saturating_add(ms(jitter(l, 20)))),
            last_used: now,
            last_alive: now,
            dirty: false,
        })
    }

    pub(super) fn lend(
        self: &Arc<Self>,
        entry: Entry<M::Object>,
        waited_since: Option<Instant>,
        at: &'static Location<'static>,
        now: Ms,
    ) -> Object<M> {
        // Every lease is recorded, so the histograms' counts are exact: an acquire that
        // did not wait records 0 without reading the clock; the time in use costs one
        // TSC read here and one on release.
        let timer = self.metrics.as_ref().map(|m| {
            match waited_since {
                Some(t) => m.acquire.record_duration(t.elapsed()),
                None => m.acquire.record(0),
            }
            quanta::Instant::now()
        });
        if let Some(leases) = &self.leases {
            leases.lock().insert(
                entry.id,
                Lease {
                    since: now,
                    at,
                    reported: false,
                },
            );
        }
        Object {
            entry: Some(entry),
            timer,
            pool: Arc::clone(self),
            discard: false,
        }
    }
}
