//! [`Pool`] and its lent-out [`Object`].

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::num::NonZeroUsize;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore, TryAcquireError};
use tokio::time::Instant;

use crate::config::{Builder, Config, LeakReport, MAX_SIZE_LIMIT};
use crate::error::{ConfigError, Error, Stage};
use crate::manager::Manager;
use crate::metrics::PoolMetrics;
use crate::slots::{PermitDebt, Slots, Take};
use crate::stats::{CloseReason, Status};
use crate::unwind;

/// One pooled object with its bookkeeping.
pub(crate) struct Entry<T> {
    obj: T,
    id: u64,
    /// When the jittered maximum lifetime ends ([`NEVER`] without one).
    expires: Ms,
    /// When a user last returned it.
    last_used: Ms,
    /// When it was last known to work: created or validated.
    last_alive: Ms,
    /// It was used since its last recycle.
    dirty: bool,
}

/// An object being held (a lease), for leak detection.
struct Lease {
    since: Ms,
    at: &'static Location<'static>,
    reported: bool,
}

/// Where a timed step ran out of time.
enum Expired {
    /// The step's own timeout.
    Step,
    /// The acquire deadline.
    Deadline,
}

/// The hot fields each sit on their own cache lines (`CachePadded`), away from one another
/// and from the `Arc` counters, so that two cores getting and returning objects do not also
/// fight over lines they merely read.
pub(crate) struct Inner<M: Manager> {
    manager: M,
    config: Config,
    semaphore: CachePadded<Semaphore>,
    slots: CachePadded<Mutex<Slots<Entry<M::Object>>>>,
    /// Permits to swallow on release instead of returning, after a shrink.
    permit_debt: PermitDebt,
    waiting: CachePadded<AtomicUsize>,
    closed: AtomicBool,
    next_id: AtomicU64,
    /// Wakes the maintenance task (an object was closed, or the pool closed).
    wake: Notify,
    /// A maintenance task is running: set by whoever spawns one, cleared when the task ends
    /// for any reason (its runtime shut down, a panic, the pool closed). While it is clear,
    /// waits use their own timers and the next acquire starts a new task on its runtime.
    ticking: AtomicBool,
    /// Signalled when an object leaves the pool after it was closed.
    drained: Notify,
    /// Signalled by the maintenance task every clock tick while callers wait for a permit, so
    /// that a wait can check its deadline without a timer of its own.
    /// Sharded so that waiters on different threads do not contend for one list.
    sweep: [CachePadded<Notify>; SWEEP_SHARDS],
    /// When (in [`Ms`]) the earliest swept waiter must be woken to arm its own timer, or
    /// [`NEVER`]: a tick sweeps only once this time has come, so waiters far from their
    /// deadlines (most of them, with the default 30 s timeout) are not woken every tick.
    sweep_due: CachePadded<AtomicU64>,
    leases: Option<Mutex<HashMap<u64, Lease>>>,
    metrics: Option<PoolMetrics>,
    clock: Clock,
    /// Consecutive failed refill passes, and when the next may run.
    refill_backoff: Mutex<(u32, Ms)>,
    /// The skip-validation window in milliseconds.
    skip_window: Ms,
}

/// An async pool of objects made by a [`Manager`]: FIFO-fair waiters, validation, lifetimes,
/// leak detection and one background maintenance task. Cloning shares the pool; dropping the
/// last clone closes it.
///
/// ```
/// use mpm_pool::{Manager, Pool};
/// use std::convert::Infallible;
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
///
/// struct Connections;
///
/// impl Manager for Connections {
///     type Object = String;
///     type Error = Infallible;
///     async fn create(&self) -> Result<String, Infallible> {
///         Ok(String::from("connection"))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(Connections)
///     .max_size(NonZeroUsize::new(8).unwrap())
///     .min_idle(2)
///     .acquire_timeout(Some(Duration::from_secs(5)))
///     .build()
///     .await?;
/// assert_eq!(pool.status().idle, 2);
/// {
///     let conn = pool.get().await?;
///     assert_eq!(conn.as_str(), "connection");
/// } // returned here, synchronously
/// pool.close();
/// # Ok(())
/// # }
/// ```
pub struct Pool<M: Manager> {
    handle: Arc<Handle<M>>,
}

/// The user-facing owner: when the last [`Pool`] clone goes, the pool closes.
struct Handle<M: Manager> {
    inner: Arc<Inner<M>>,
}

impl<M: Manager> Drop for Handle<M> {
    fn drop(&mut self) {
        self.inner.close();
    }
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            handle: Arc::clone(&self.handle),
        }
    }
}

impl<M: Manager> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl<M: Manager> Pool<M> {
    /// A builder for a pool of objects made by `manager`.
    pub fn builder(manager: M) -> Builder<M> {
        Builder::new(manager)
    }

    pub(crate) fn from_parts(manager: M, config: Config) -> Result<Self, ConfigError> {
        let (metrics, gauges) = match &config.registry {
            Some((registry, name)) => {
                let (m, g) = PoolMetrics::register(registry, name)?;
                (Some(m), Some(g))
            }
            None => (None, None),
        };
        let inner = Arc::new(Inner {
            semaphore: CachePadded::new(Semaphore::new(config.max_size)),
            slots: CachePadded::new(Mutex::new(Slots::new(config.max_size))),
            permit_debt: PermitDebt::default(),
            waiting: CachePadded::new(AtomicUsize::new(0)),
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            wake: Notify::new(),
            ticking: AtomicBool::new(false),
            drained: Notify::new(),
            sweep: std::array::from_fn(|_| CachePadded::new(Notify::new())),
            sweep_due: CachePadded::new(AtomicU64::new(NEVER)),
            leases: config
                .leak_threshold
                .map(|_| Mutex::new(HashMap::with_capacity(config.max_size.min(1024)))),
            metrics,
            clock: Clock::new(config.maintenance.map(|_| clock_tick(&config))),
            skip_window: ms(config.skip_validation_within),
            refill_backoff: Mutex::new((0, 0)),
            manager,
            config,
        });
        if let (Some(m), Some(g)) = (&inner.metrics, gauges) {
            m.collect(&inner, g, Inner::status);
        }
        if inner.config.maintenance.is_some() {
            tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
            inner.ensure_maintenance();
        }
        Ok(Pool {
            handle: Arc::new(Handle { inner }),
        })
    }

    fn inner(&self) -> &Arc<Inner<M>> {
        &self.handle.inner
    }

    /// Gets an object: an idle one (recycled if it was used, validated unless used within
    /// the skip-validation window) or a new one. Waiters are served first come, first
    /// served. The whole call is bounded by the acquire timeout. The place of the call is
    /// remembered for leak reports.
    #[track_caller]
    pub fn get(&self) -> impl Future<Output = Result<Object<M>, Error<M::Error>>> + Send + '_ {
        let at = Location::caller();
        self.inner()
            .acquire(at, self.inner().config.acquire_timeout)
    }

    /// Like [`Pool::get`] with a timeout for this call instead of the pool's.
    #[track_caller]
    pub fn get_timeout(
        &self,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Object<M>, Error<M::Error>>> + Send + '_ {
        let at = Location::caller();
        self.inner().acquire(at, timeout)
    }

    /// The pool's current state (the metrics' gauges read the same at every scrape).
    pub fn status(&self) -> Status {
        self.inner().status()
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.inner().manager
    }

    /// Changes the maximum size. Growing takes effect at once; shrinking closes idle objects
    /// above the new maximum now and lent ones as they come back.
    pub fn resize(&self, max_size: NonZeroUsize) -> Result<(), ConfigError> {
        self.inner().resize(max_size.get())
    }

    /// Closes the pool: waiters and later calls get [`Error::Closed`], idle objects are
    /// closed now and lent ones when they come back, and the maintenance task stops.
    pub fn close(&self) {
        self.inner().close();
    }

    /// Whether the pool was closed.
    pub fn is_closed(&self) -> bool {
        self.inner().closed.load(Ordering::Acquire)
    }

    /// Closes the pool and waits until every lent object has come back and been closed, at
    /// most `timeout`. Returns whether the pool emptied in time.
    pub async fn close_and_wait(&self, timeout: Duration) -> bool {
        let inner = self.inner();
        inner.close();
        let deadline = Instant::now() + timeout;
        loop {
            let mut drained = pin!(inner.drained.notified());
            drained.as_mut().enable();
            if inner.slots.lock().size() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return inner.slots.lock().size() == 0;
            }
        }
    }

    /// Creates objects until `min_idle` are idle (at build).
    pub(crate) async fn fill_min_idle(&self) -> Result<(), Error<M::Error>> {
        let inner = self.inner();
        while inner.refill_one().await? {}
        Ok(())
    }

    /// Runs the maintenance pass now (lifetimes, idle timeouts, keepalive, refill, leaks),
    /// as the background task does on each tick.
    pub async fn run_maintenance(&self) {
        self.inner().maintain_once().await;
    }
}

/// Polls `fut` once; if it is not ready, bounds it by `step` and by `deadline`.
async fn bounded<F: Future>(
    fut: F,
    step: Option<Duration>,
    deadline: &mut Deadline,
) -> Result<F::Output, Expired> {
    let mut fut = pin!(fut);
    if let Poll::Ready(v) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        return Ok(v);
    }
    let now = Instant::now();
    let step_end = step.map(|s| now + s);
    let (end, which) = match (step_end, deadline.at(now)) {
        (None, None) => return Ok(fut.await),
        (Some(s), None) => (s, Expired::Step),
        (None, Some(d)) => (d, Expired::Deadline),
        (Some(s), Some(d)) if d <= s => (d, Expired::Deadline),
        (Some(s), Some(_)) => (s, Expired::Step),
    };
    tokio::time::timeout_at(end, fut).await.map_err(|_| which)
}

/// An acquire's deadline, fixed the first time it is needed: the fast path never reads the
/// clock.
struct Deadline {
    timeout: Option<Duration>,
    at: Option<Instant>,
}

impl Deadline {
    fn new(timeout: Option<Duration>) -> Self {
        Deadline { timeout, at: None }
    }

    /// The deadline, starting the count at `now` if it has not started.
    fn at(&mut self, now: Instant) -> Option<Instant> {
        let timeout = self.timeout?;
        Some(*self.at.get_or_insert(now + timeout))
    }
}

/// Shards of the waiters' sweep list.
const SWEEP_SHARDS: usize = 8;

/// When a lease started, for the time-in-use histogram.
type Timer = quanta::Instant;

/// Milliseconds since a pool's epoch.
type Ms = u64;

/// "Never" in [`Ms`].
const NEVER: Ms = u64::MAX;

fn ms(d: Duration) -> Ms {
    u64::try_from(d.as_millis()).unwrap_or(NEVER - 1)
}

/// The pool's clock in milliseconds. With maintenance on, the hot path reads a coarse value
/// that the maintenance task refreshes every `lag` (and every precise read moves forward), so
/// getting and returning an object never calls the system clock. Comparisons that must not
/// err on the optimistic side add `lag`.
struct Clock {
    epoch: Instant,
    coarse: Option<AtomicU64>,
    lag: Ms,
}

impl Clock {
    fn new(tick: Option<Duration>) -> Self {
        Clock {
            epoch: Instant::now(),
            coarse: tick.map(|_| AtomicU64::new(0)),
            lag: tick.map_or(0, ms),
        }
    }

    fn at(&self, t: Instant) -> Ms {
        ms(t.saturating_duration_since(self.epoch))
    }

    /// Reads the system clock (and moves the coarse clock forward).
    fn precise(&self) -> Ms {
        let now = self.at(Instant::now());
        if let Some(c) = &self.coarse
            && c.load(Ordering::Relaxed) < now
        {
            c.fetch_max(now, Ordering::Relaxed);
        }
        now
    }

    /// How often the coarse clock is refreshed (and waiters swept), if there is one.
    fn tick(&self) -> Option<Duration> {
        self.coarse
            .as_ref()
            .map(|_| Duration::from_millis(self.lag.max(1)))
    }

    /// The coarse time if there is one, else the precise time.
    fn now(&self) -> Ms {
        match &self.coarse {
            Some(c) => c.load(Ordering::Relaxed),
            None => self.precise(),
        }
    }
}

struct PermitGuard<'a, M: Manager>(&'a Inner<M>);

impl<M: Manager> Drop for PermitGuard<'_, M> {
    fn drop(&mut self) {
        self.0.release_permit();
    }
}

/// Frees a reserved place on drop unless disarmed (a cancelled or failed creation).
struct Reservation<'a, M: Manager>(&'a Inner<M>);

impl<M: Manager> Drop for Reservation<'_, M> {
    fn drop(&mut self) {
        self.0.slots.lock().cancel_reservation();
        // No object left the pool, so there is nothing to refill: only a closing pool's
        // waiters care.
        if self.0.closed.load(Ordering::Acquire) {
            self.0.drained.notify_waiters();
        }
    }
}

/// Holds a lent entry being checked; closes it on drop (a cancelled acquire).
struct Checking<'a, M: Manager> {
    inner: &'a Inner<M>,
    entry: Option<Entry<M::Object>>,
}

impl<M: Manager> Drop for Checking<'_, M> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.inner.close_lent(entry, CloseReason::Cancelled);
        }
    }
}

/// Decrements the waiting count on drop.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `d` shortened by a random fraction of at most `1/divisor`.
pub(crate) fn jitter(d: Duration, divisor: u32) -> Duration {
    let cut = d / divisor;
    d.saturating_sub(cut.mul_f64(fastrand::f64()))
}

/// The pause before the next creation attempt after `failures` failures.
fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    let exp = min.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let capped = exp.min(max);
    // Between half and all of the capped pause, so that retrying waiters spread out.
    capped / 2 + (capped / 2).mul_f64(fastrand::f64())
}

impl<M: Manager> Inner<M> {
    async fn acquire(
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
    async fn wait_permit(
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
    fn ticks_on_time(&self, now: Instant) -> bool {
        self.ticking.load(Ordering::Acquire)
            && self.clock.at(now).saturating_sub(self.clock.now())
                <= self.clock.lag.saturating_mul(4)
    }

    /// Starts the maintenance task on the caller's runtime unless one is running (or the
    /// pool is closed, or maintenance is off, or there is no runtime). Called at build and by
    /// an acquire that finds the task gone: a pool built in one runtime and used from another
    /// after the first shut down gets its maintenance back.
    fn ensure_maintenance(self: &Arc<Self>) {
        let Some(interval) = self.config.maintenance else {
            return;
        };
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self
            .ticking
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            // The guard is made here, not in the task: a task dropped before its first poll
            // (its runtime shut down first) still clears the flag.
            let ended = MaintenanceEnded(Arc::downgrade(self));
            runtime.spawn(maintain(Arc::downgrade(self), interval, ended));
        }
    }

    /// Recycles a used entry and validates it unless it was alive recently. `Ok(true)`: hand
    /// it out; `Ok(false)`: it was closed, try the next one.
    async fn check(
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

    fn close_checking(&self, checking: &mut Checking<'_, M>, reason: CloseReason) {
        if let Some(entry) = checking.entry.take() {
            self.close_lent(entry, reason);
        }
    }

    /// Creates one entry (the caller holds a reservation), through the circuit breaker.
    async fn create_entry(
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

    fn lend(
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

    /// A lent object comes back (synchronous, allocation-free).
    fn release(&self, mut entry: Entry<M::Object>, timer: Option<Timer>, discard: bool) {
        let now = self.clock.now();
        if let (Some(m), Some(t)) = (&self.metrics, timer) {
            m.in_use_time.record_duration(t.elapsed());
        }
        let leaked = self
            .leases
            .as_ref()
            .and_then(|leases| leases.lock().remove(&entry.id))
            .is_some_and(|lease| lease.reported);
        let reason = if discard {
            Some(CloseReason::Discarded)
        } else if let Some(reason) = self.broken(&mut entry.obj) {
            Some(reason)
        } else if leaked {
            Some(CloseReason::Leaked)
        } else if self.closed.load(Ordering::Acquire) {
            Some(CloseReason::Shutdown)
        } else if now >= entry.expires {
            Some(CloseReason::Lifetime)
        } else {
            None
        };
        match reason {
            Some(reason) => self.close_lent(entry, reason),
            None => {
                // Not `last_alive`: that a caller used the object says nothing about whether
                // its last command worked, so only a creation or a validation vouches for it.
                entry.last_used = now;
                entry.dirty = true;
                let refused = self.slots.lock().put(entry);
                if let Err(entry) = refused {
                    self.close_lent(entry, CloseReason::Shutdown);
                } else if self.closed.load(Ordering::Acquire) {
                    self.drain_idle();
                }
            }
        }
        self.release_permit();
    }

    fn release_permit(&self) {
        self.permit_debt.release(|| self.semaphore.add_permits(1));
    }

    /// Closes a lent entry: it leaves the pool's count.
    fn close_lent(&self, entry: Entry<M::Object>, reason: CloseReason) {
        self.slots.lock().forget_lent();
        self.close_object(entry, reason);
    }

    /// The manager's synchronous check: `Some(Broken)`, `Some(Panicked)` if it panicked, or
    /// `None` if the object looks fine.
    fn broken(&self, obj: &mut M::Object) -> Option<CloseReason> {
        match unwind::call("is_broken", || self.manager.is_broken(obj)) {
            Ok(false) => None,
            Ok(true) => Some(CloseReason::Broken),
            Err(_) => Some(CloseReason::Panicked),
        }
    }

    /// Closes an entry that is no longer counted.
    fn close_object(&self, entry: Entry<M::Object>, reason: CloseReason) {
        // A panic in `close` has already dropped the object: nothing more to do.
        let _ = unwind::call("close", || self.manager.close(entry.obj));
        if let Some(m) = &self.metrics {
            m.closed(reason);
        }
        self.after_close();
    }

    /// After an object left the pool: wake the maintenance task to refill, or signal the
    /// waiters of a closed pool.
    fn after_close(&self) {
        if self.closed.load(Ordering::Acquire) {
            self.drained.notify_waiters();
        } else if self.config.min_idle > 0 {
            self.wake.notify_one();
        }
    }

    fn drain_idle(&self) {
        let drained = self.slots.lock().drain_idle();
        for entry in drained {
            self.close_object(entry, CloseReason::Shutdown);
        }
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.semaphore.close();
        self.drain_idle();
        self.wake.notify_one();
        self.drained.notify_waiters();
    }

    fn timed_out(&self, stage: Stage, timeout: Option<Duration>) -> Error<M::Error> {
        self.count_timeout(Stage::Acquire);
        Error::Timeout {
            stage,
            timeout: timeout.unwrap_or_default(),
        }
    }

    fn count_timeout(&self, stage: Stage) {
        if let Some(m) = &self.metrics {
            m.timeout(stage);
        }
    }

    fn status(&self) -> Status {
        let slots = self.slots.lock();
        let status = Status {
            size: slots.size(),
            idle: slots.idle(),
            in_use: slots.lent(),
            creating: slots.creating(),
            waiting: self.waiting.load(Ordering::Relaxed),
            max_size: slots.max(),
            available: self.semaphore.available_permits(),
            breaker: self.config.breaker.as_ref().map(|b| b.state()),
        };
        drop(slots);
        status
    }

    fn resize(&self, max_size: usize) -> Result<(), ConfigError> {
        if max_size > MAX_SIZE_LIMIT {
            return Err(ConfigError::TooLarge(max_size));
        }
        if max_size < self.config.min_idle {
            return Err(ConfigError::MinIdleAboveMax {
                min_idle: self.config.min_idle,
                max_size,
            });
        }
        let mut slots = self.slots.lock();
        let old = slots.max();
        let excess = slots.set_max(max_size);
        if max_size > old {
            self.permit_debt
                .grow(max_size - old, |n| self.semaphore.add_permits(n));
        } else {
            self.permit_debt.shrink(old - max_size, || {
                self.semaphore.try_acquire().map(|p| p.forget()).is_ok()
            });
        }
        drop(slots);
        for entry in excess {
            self.close_object(entry, CloseReason::Shutdown);
        }
        Ok(())
    }

    /// Creates one idle object if fewer than `min_idle` are idle and a permit is free.
    /// Returns whether it made one.
    async fn refill_one(&self) -> Result<bool, Error<M::Error>> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(false);
        }
        let Ok(permit) = self.semaphore.try_acquire() else {
            return Ok(false);
        };
        permit.forget();
        let _permit = PermitGuard(self);
        if !self.slots.lock().reserve_for_idle(self.config.min_idle) {
            return Ok(false);
        }
        let reservation = Reservation(self);
        let entry = self.create_entry(&mut Deadline::new(None), None).await?;
        std::mem::forget(reservation);
        let refused = self.slots.lock().created_idle(entry);
        if let Err(entry) = refused {
            self.close_lent(entry, CloseReason::Shutdown);
            return Ok(false);
        }
        if self.closed.load(Ordering::Acquire) {
            // Closed while creating: the new object must not outlive the pool.
            self.drain_idle();
            return Ok(false);
        }
        Ok(true)
    }

    /// One maintenance pass.
    async fn maintain_once(&self) {
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

    async fn keepalive(&self, keepalive: Duration) {
        let idle = self.slots.lock().idle();
        for _ in 0..idle {
            let Ok(permit) = self.semaphore.try_acquire() else {
                return;
            };
            permit.forget();
            let _permit = PermitGuard(self);
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
                    let refused = self.slots.lock().put(entry);
                    if let Err(entry) = refused {
                        self.close_lent(entry, CloseReason::Shutdown);
                    } else if self.closed.load(Ordering::Acquire) {
                        self.drain_idle();
                    }
                }
                Ok(Ok(Err(_))) => self.close_lent(entry, CloseReason::Invalid),
                Err(_) => {
                    self.count_timeout(Stage::Validate);
                    self.close_lent(entry, CloseReason::Timeout);
                }
            }
        }
    }

    fn report_leaks(&self, now: Ms) {
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

    /// A registered waiter must be woken at `wake_at` to arm its own timer.
    fn sweep_at(&self, wake_at: Ms) {
        if self.sweep_due.load(Ordering::Relaxed) > wake_at {
            self.sweep_due.fetch_min(wake_at, Ordering::AcqRel);
        }
    }

    /// A clock tick: refreshes the coarse clock and, once a waiter's wake time has come,
    /// wakes the registered waiters to check their deadlines.
    fn tick(&self) {
        let now = self.clock.precise();
        if self.waiting.load(Ordering::Relaxed) > 0 && now >= self.sweep_due.load(Ordering::Acquire)
        {
            // Taken before the wake-up: a waiter that registers after it publishes its time
            // again, for a later tick; one that published before it is in the list and is
            // woken now (the swap reads its time, so its registration happened before).
            self.sweep_due.swap(NEVER, Ordering::AcqRel);
            for shard in &self.sweep {
                shard.notify_waiters();
            }
        }
    }

    /// How long the maintenance task waits between passes.
    fn pass_interval(&self, interval: Duration) -> Duration {
        match self.config.leak_threshold {
            Some(t) => interval.min(t / 20),
            None => interval,
        }
        .max(Duration::from_millis(1))
    }
}

/// How often the maintenance task refreshes the coarse clock: often enough for the
/// skip-validation window and leak detection to stay within a few percent.
fn clock_tick(config: &Config) -> Duration {
    let mut tick = Duration::from_millis(100);
    if !config.skip_validation_within.is_zero() {
        tick = tick.min(config.skip_validation_within / 4);
    }
    if let Some(leak) = config.leak_threshold {
        tick = tick.min(leak / 20);
    }
    tick.max(Duration::from_millis(1))
}

/// Frees a half-open breaker's trial if a creation is cancelled.
struct AbandonTrial<'a>(&'a crate::breaker::CircuitBreaker);

impl Drop for AbandonTrial<'_> {
    fn drop(&mut self) {
        self.0.record_abandoned();
    }
}

/// The maintenance task: refreshes the coarse clock every tick and runs a pass every
/// interval (or when woken). It holds only a weak reference between ticks, so it never keeps
/// a dropped pool alive.
async fn maintain<M: Manager>(
    weak: Weak<Inner<M>>,
    interval: Duration,
    ended: MaintenanceEnded<M>,
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

/// Runs when the maintenance task ends for any reason (returned, panicked, or dropped with
/// its runtime): marks it gone and wakes the swept waiters, which then use their own timers.
struct MaintenanceEnded<M: Manager>(Weak<Inner<M>>);

impl<M: Manager> Drop for MaintenanceEnded<M> {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.ticking.store(false, Ordering::Release);
            for shard in &inner.sweep {
                shard.notify_waiters();
            }
        }
    }
}

/// An object lent out by a [`Pool`]; it goes back when dropped (synchronously, without
/// allocating). Dereferences to the manager's object.
pub struct Object<M: Manager> {
    entry: Option<Entry<M::Object>>,
    /// When it was lent, if the pool records metrics.
    timer: Option<Timer>,
    pool: Arc<Inner<M>>,
    discard: bool,
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
        pool.slots.lock().forget_lent();
        if let Some(m) = &pool.metrics {
            m.closed(CloseReason::Taken);
        }
        pool.after_close();
        pool.release_permit();
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
