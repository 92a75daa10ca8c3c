//! The acquisition path: an idle object, room for a new one, or a place in the queue (waiting
//! with the sweep or a timer to be handed one of them); then the object checked (recycle,
//! validate) or a new one created.

use std::future::{Future, poll_fn};
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use super::inner::{Entry, Inner, Lease, PoolSlots};
use super::object::Object;

use crate::backoff::{backoff, jitter};
use crate::clock::{Ms, NEVER, Since, ms};
use crate::deadline::{
    Deadline, Expired, bounded, bounded_call, start_wait, sweep_again_at, sweep_wake_at, timer_at,
};
use crate::error::{Error, Stage};
use crate::guards::{AbandonTrial, Checking, Queued, Reservation};
use crate::manager::Manager;
use crate::slots::{Grant, Take};
use crate::stats::CloseReason;
use crate::task::Maintained;
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
        // Set when the caller had to wait (for an object or a creation), for the histogram.
        let mut waited_since: Option<Since> = None;
        let mut failures = 0u32;
        // A place kept through the pause after a failed creation, so that the pause holds
        // for every caller (giving it up would hand it to a waiter that creates at once).
        let mut kept: Option<Reservation<&Self>> = None;
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            let taken = match kept.take() {
                Some(reservation) => {
                    std::mem::forget(reservation);
                    Some(Take::Reserved)
                }
                // Others wait (the hint): join them in the wait's first poll.
                None if self.slots.queued.load(Ordering::Relaxed) => None,
                None => Some(self.take_hinted(&mut self.slots.lock())),
            };
            let grant = match taken.map(Take::into_grant) {
                Some(Ok(grant)) => grant,
                waiting => {
                    // Joined under a key, or (the hint) to join in the wait's first poll.
                    let key = waiting.and_then(Result::err);
                    let grant = self
                        .wait(key, timeout, &mut waited_since, &mut deadline)
                        .await?;
                    if self.closed.load(Ordering::Acquire) {
                        self.pass_on(Some(grant));
                        return Err(Error::Closed);
                    }
                    grant
                }
            };
            let now = self.now();
            match grant {
                Grant::Object(mut entry) => {
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
                        place: &**self,
                        entry: Some(entry),
                        reason: CloseReason::Cancelled,
                    };
                    if self
                        .check(&mut checking, now, &mut deadline, timeout)
                        .await?
                        && let Some(entry) = checking.entry.take()
                    {
                        return Ok(self.lend(entry, waited_since, at, now));
                    }
                }
                Grant::Room => {
                    let reservation = Reservation(&**self);
                    // A wait has started the deadline already, if there was one.
                    let started = Instant::now();
                    waited_since.get_or_insert(Since::At(started));
                    deadline.at(started);
                    // Boxed, as the waits below: creating is rare and slow beside an allocation, and
                    // the futures of this cold path would otherwise make every get's future (moved
                    // and copied on each get) several times larger.
                    let seen = self.recovery.seen();
                    match Box::pin(self.create_entry(&mut deadline, timeout)).await {
                        Ok(entry) => {
                            std::mem::forget(reservation);
                            self.slots.lock().created_lent();
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
                            if Box::pin(tokio::time::timeout_at(d, b.wait(refused)))
                                .await
                                .is_err()
                            {
                                self.count_timeout(Stage::Acquire);
                                return Err(Error::circuit_open(refused, Instant::now()));
                            }
                        }
                        Err(e) => {
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
                                (Some(_), _) => {
                                    // A creation that succeeds elsewhere (the server is back)
                                    // ends the pause at once and resets the backoff.
                                    if Box::pin(self.recovery.pause(pause, seen)).await {
                                        failures = 0;
                                    }
                                    kept = Some(reservation);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Waits in the queue until the caller is handed an object or room (or the pool closes,
    /// or the deadline passes). Without a `key` the caller has not joined the queue
    /// yet: the first poll takes what is free, or joins and registers the waker, under one lock.
    ///
    /// With maintenance on, a wait sets no timer of its own until its deadline is within two
    /// clock ticks: its place in the queue says when it must be woken (`sweep_due` keeps the
    /// earliest such time), and the maintenance task wakes it on the first tick at or after
    /// that time; only a wait still unserved near its deadline arms a precise timer. Most
    /// waits are short, and registering (then cancelling) a timer per wait was most of the
    /// cost of a contended acquire. Without a live maintenance task (it ended with its
    /// runtime, or its runtime is stalled) a wait uses its own timer from the start.
    pub(super) async fn wait(
        &self,
        key: Option<usize>,
        timeout: Option<Duration>,
        waited_since: &mut Option<Since>,
        deadline: &mut Deadline,
    ) -> Result<Grant<Box<Entry<M::Object>>>, Error<M::Error>> {
        // Leaves the queue if this wait is dropped.
        let mut queued = Queued {
            place: self,
            id: key,
        };
        let mut joined = key;
        // The clock is read only if a timeout or the statistics need it: from the TSC while
        // the task ticks on time (then known in milliseconds, and made an instant only if
        // the statistics or a timer need one), else Tokio's.
        let fresh = !deadline.started();
        let mut start = None;
        if timeout.is_some() || self.metrics.is_some() {
            start = Some(start_wait(
                &self.clock,
                deadline,
                self.metrics.is_some(),
                waited_since,
            ));
        }
        // When the sweep must wake this waiter, if it can count on the sweep (in
        // milliseconds: as read from the TSC, or Tokio's reading converted once).
        let mut publish = match (start, timeout) {
            (Some(start), Some(timeout)) => sweep_wake_at(self, start, timeout, fresh, deadline),
            _ => None,
        };
        let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
        if publish.is_none()
            && let Some(d) = deadline.instant()
        {
            timer = Some(timer_at(d));
        }
        let mut first = true;
        poll_fn(|cx| {
            // The first poll registers the waker: cloned before the lock (the clone touches the
            // task's header), so that the lock is held for less.
            let mut waker = first.then(|| cx.waker().clone());
            let key = {
                let mut slots = self.slots.lock();
                let key = match joined {
                    Some(key) => {
                        if let Some(grant) = slots.granted(key) {
                            queued.id = None;
                            return Poll::Ready(Ok(grant));
                        }
                        key
                    }
                    None => match self.take_hinted(&mut slots).into_grant() {
                        Ok(grant) => return Poll::Ready(Ok(grant)),
                        Err(key) => {
                            queued.id = Some(key);
                            joined = Some(key);
                            key
                        }
                    },
                };
                slots.set_waker(
                    key,
                    |w| w.will_wake(cx.waker()),
                    || waker.take().unwrap_or_else(|| cx.waker().clone()),
                );
                if let Some(at) = publish.take() {
                    slots.set_wake_at(key, at);
                    self.lower_sweep_due(at);
                }
                key
            };
            if self.closed.load(Ordering::Acquire) {
                return Poll::Ready(Err(Error::Closed));
            }
            // The deadline is made an instant here only if a timer or the sweep needs it.
            if timer.is_none() && deadline.started() {
                if first {
                    // A task that ended before this waiter joined the queue did not wake it.
                    if !self.ticking.load(Ordering::Acquire)
                        && let Some(d) = deadline.instant()
                    {
                        timer = Some(timer_at(d));
                    }
                } else if let Some(d) = deadline.instant() {
                    // Woken by the sweep (near the deadline), by the task ending, or for no
                    // reason: arm the timer, or ask the sweep again.
                    match sweep_again_at(self, d) {
                        None => timer = Some(timer_at(d)),
                        Some(at) => {
                            self.slots.lock().set_wake_at(key, at);
                            self.lower_sweep_due(at);
                        }
                    }
                }
            }
            first = false;
            if let Some(sleep) = timer.as_mut()
                && sleep.as_mut().poll(cx).is_ready()
            {
                // An object may have been handed over just now: take it rather than waste it.
                queued.id = None;
                let grant = self.slots.lock().cancel(key);
                return Poll::Ready(match grant {
                    Some(grant) => Ok(grant),
                    None => Err(self.timed_out(Stage::Acquire, timeout)),
                });
            }
            Poll::Pending
        })
        .await
    }

    /// Takes an idle object or room from the locked `slots`, or joins their queue, and
    /// updates the hint that callers are queued.
    #[inline]
    fn take_hinted(&self, slots: &mut PoolSlots<M>) -> Take<Box<Entry<M::Object>>> {
        let taken = slots.take(self.config.queue_mode);
        self.slots.hint(slots);
        taken
    }

    /// Recycles a used entry and validates it unless it was alive recently. `Ok(true)`: hand
    /// it out; `Ok(false)`: it was closed, try the next one.
    pub(super) async fn check(
        &self,
        checking: &mut Checking<&Self>,
        now: Ms,
        deadline: &mut Deadline,
        timeout: Option<Duration>,
    ) -> Result<bool, Error<M::Error>> {
        let Some(entry) = checking.entry.as_mut() else {
            return Ok(false);
        };
        if entry.dirty {
            let obj = &mut entry.obj;
            match bounded_call(
                "recycle",
                || self.manager.recycle(obj),
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
            match bounded_call(
                "validate",
                || self.manager.validate(obj),
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

    pub(super) fn close_checking(&self, checking: &mut Checking<&Self>, reason: CloseReason) {
        if let Some(entry) = checking.entry.take() {
            self.close_lent(entry, reason);
        }
    }

    /// Creates one entry (the caller holds a reservation), through the circuit breaker.
    pub(super) async fn create_entry(
        &self,
        deadline: &mut Deadline,
        timeout: Option<Duration>,
    ) -> Result<Box<Entry<M::Object>>, Error<M::Error>> {
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
                self.recovered();
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
        Ok(Box::new(Entry {
            obj,
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            expires: self
                .config
                .max_lifetime
                .map_or(NEVER, |l| now.saturating_add(ms(jitter(l, 20)))),
            last_used: now,
            last_alive: now,
            dirty: false,
        }))
    }

    // Inline, so that the object is built where the get's future returns it (returned from a
    // call, it was copied out with loads that stalled on the call's stores).
    #[inline(always)]
    pub(super) fn lend(
        self: &Arc<Self>,
        entry: Box<Entry<M::Object>>,
        waited_since: Option<Since>,
        at: &'static Location<'static>,
        now: Ms,
    ) -> Object<M> {
        // Every lease is recorded, so the histograms' counts are exact (see `lent`).
        let timer = self
            .metrics
            .as_ref()
            .map(|m| m.lent(&self.clock, waited_since));
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

impl<M: Manager> Inner<M> {
    /// A creation succeeded: the places pausing after failed creations try again at once,
    /// and the refill's backoff starts over.
    #[cold]
    fn recovered(&self) {
        self.recovery.succeeded();
        let mut refill = self.refill_backoff.lock();
        if refill.0 != 0 {
            *refill = (0, 0);
        }
    }
}
