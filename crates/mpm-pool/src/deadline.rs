//! Deadlines of an acquire and the steps bounded by them, shared by both pools.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::clock::{Clock, Ms, NEVER, Since, ms};
use crate::task::Maintained;
use crate::unwind::{self, Panicked};

/// Where a timed step ran out of time.
#[derive(Clone, Copy)]
pub(crate) enum Expired {
    /// The step's own timeout.
    Step,
    /// The acquire deadline.
    Deadline,
}

/// Polls `fut` once; if it is not ready, bounds it by `step` and by `deadline`.
pub(crate) async fn bounded<F: Future>(
    fut: F,
    step: Option<Duration>,
    deadline: &mut Deadline,
) -> Result<F::Output, Expired> {
    let mut fut = pin!(fut);
    if let Poll::Ready(v) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        return Ok(v);
    }
    bounded_pending(fut, step, deadline).await
}

/// A call of the manager's async `method` (`call` makes its future), bounded as [`bounded`]
/// and catching a panic, in the call or in any poll, as [`unwind::call_async`]. The first
/// poll, which usually finishes it (a recycle or validate with nothing to do), runs inline;
/// the timer and the layers of the slow path are set up only if it is pending. The future is
/// made here rather than passed in, so that it is not moved (a small future's move stalled on
/// the stores that had just made it).
pub(crate) async fn bounded_call<F: Future>(
    method: &'static str,
    call: impl FnOnce() -> F,
    step: Option<Duration>,
    deadline: &mut Deadline,
) -> Result<Result<F::Output, Panicked>, Expired> {
    let fut = match unwind::call(method, call) {
        Ok(fut) => fut,
        Err(panicked) => return Ok(Err(panicked)),
    };
    let mut fut = pin!(fut);
    if let Poll::Ready(v) = poll_fn(|cx| Poll::Ready(unwind::poll(method, fut.as_mut(), cx))).await
    {
        return Ok(v);
    }
    bounded_pending(unwind::call_async(method, fut), step, deadline).await
}

/// [`bounded`] after its first poll found `fut` pending.
async fn bounded_pending<F: Future>(
    fut: F,
    step: Option<Duration>,
    deadline: &mut Deadline,
) -> Result<F::Output, Expired> {
    let mut fut = pin!(fut);
    let now = Instant::now();
    let step_end = step.map(|s| now + s);
    let (end, which) = match (step_end, deadline.at(now)) {
        (None, None) => return Ok(fut.await),
        (Some(s), None) => (s, Expired::Step),
        (None, Some(d)) => (d, Expired::Deadline),
        (Some(s), Some(d)) if d <= s => (d, Expired::Deadline),
        (Some(s), Some(_)) => (s, Expired::Step),
    };
    let mut sleep = timer_at(end);
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(which)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// A wait's own timer, boxed: it is armed rarely (near the deadline, without a maintenance
/// task, or on a step that waits on I/O anyway), and a `Sleep` in place would make every
/// future that holds one larger (each get's, moved on every call).
pub(crate) fn timer_at(at: Instant) -> Pin<Box<Sleep>> {
    Box::pin(tokio::time::sleep_until(at))
}

/// An acquire's deadline, fixed the first time it is needed: the fast path never reads the
/// clock. A wait that read its start from the TSC leaves it in nanoseconds, made an instant
/// only if a timer or a later step needs the deadline (most waits end with an object first).
pub(crate) struct Deadline {
    timeout: Option<Duration>,
    at: Option<Instant>,
    /// A start not yet made an instant: nanoseconds after an epoch.
    from: Option<(Instant, u64)>,
}

impl Deadline {
    pub(crate) fn new(timeout: Option<Duration>) -> Self {
        Deadline {
            timeout,
            at: None,
            from: None,
        }
    }

    /// Whether the count has started.
    pub(crate) fn started(&self) -> bool {
        self.at.is_some() || self.from.is_some()
    }

    /// Starts the count at `ns` nanoseconds after `epoch`, if it has not started (and there
    /// is a timeout).
    pub(crate) fn start_at(&mut self, epoch: Instant, ns: u64) {
        if self.timeout.is_some() && !self.started() {
            self.from = Some((epoch, ns));
        }
    }

    /// The deadline, if the count has started.
    pub(crate) fn instant(&mut self) -> Option<Instant> {
        let timeout = self.timeout?;
        if let Some((epoch, ns)) = self.from.take() {
            self.at = Some(epoch + Duration::from_nanos(ns) + timeout);
        }
        self.at
    }

    /// The deadline, starting the count at `now` if it has not started.
    pub(crate) fn at(&mut self, now: Instant) -> Option<Instant> {
        let timeout = self.timeout?;
        match self.instant() {
            Some(at) => Some(at),
            None => Some(*self.at.insert(now + timeout)),
        }
    }
}

/// Where a wait read its start: from the TSC while the maintenance task ticks on time (in
/// [`Ms`]), else from Tokio's clock (made [`Ms`] only if the sweep is to wake the wait).
#[derive(Clone, Copy)]
pub(crate) enum WaitStart {
    Tsc(Ms),
    Tokio(Instant),
}

/// Starts a wait's deadline (if its count has not started) and reads the wait's start: from
/// the TSC while the maintenance task ticks on time (then known in milliseconds, and made an
/// instant only if a timer needs one), else from Tokio's clock. `since`, the statistics'
/// start of the wait, is set (unless set already) from the same reading: the raw TSC reading
/// if `stats` (else never read), else Tokio's (always).
#[inline]
pub(crate) fn start_wait(
    clock: &Clock,
    deadline: &mut Deadline,
    stats: bool,
    since: &mut Option<Since>,
) -> WaitStart {
    match clock.fast_now() {
        Some((ns, read_ms, raw)) => {
            if stats {
                since.get_or_insert(Since::Raw(raw));
            }
            deadline.start_at(clock.epoch, ns);
            WaitStart::Tsc(read_ms)
        }
        None => {
            let now = Instant::now();
            since.get_or_insert(Since::At(now));
            deadline.at(now);
            WaitStart::Tokio(now)
        }
    }
}

/// Two ticks of the coarse clock: a waiter whose deadline is nearer arms its own timer.
#[inline]
fn margin(clock: &Clock) -> Option<Ms> {
    clock.tick().map(|tick| tick.saturating_mul(2))
}

/// When `pool`'s sweep must wake a wait that started at `start` with `timeout` (`fresh`: its
/// deadline was started by this wait, so it ends `timeout` after `start`), if it can count on
/// the sweep: a maintenance task ticks on time and the deadline is more than two ticks away.
/// `None`: the wait arms its own timer.
#[inline]
pub(crate) fn sweep_wake_at<T: Maintained>(
    pool: &T,
    start: WaitStart,
    timeout: Duration,
    fresh: bool,
    deadline: &mut Deadline,
) -> Option<Ms> {
    let clock = pool.clock();
    let margin = margin(clock)?;
    let (now_ms, on_time) = match start {
        // Read from the TSC, the time itself says that the task ticks on time.
        WaitStart::Tsc(now_ms) => (now_ms, pool.ticking().load(Ordering::Acquire)),
        WaitStart::Tokio(now) => {
            let now_ms = clock.at(now);
            let on_time = pool.ticks_on_time_ms(now_ms);
            if !on_time {
                // The task may have stalled after earlier waiters counted on its sweep.
                pool.wake_swept();
            }
            (now_ms, on_time)
        }
    };
    let end_ms = if fresh {
        now_ms.saturating_add(ms(timeout))
    } else {
        deadline.instant().map_or(NEVER, |d| clock.at(d))
    };
    (now_ms.saturating_add(margin) < end_ms && on_time).then(|| end_ms.saturating_sub(margin))
}

/// A waiter with deadline `d` woke unserved (by the sweep near its deadline, by the task
/// ending, or for no reason): when the sweep must wake it again, or `None` if it must arm its
/// own timer (the deadline is within two ticks, or no task ticks on time).
pub(crate) fn sweep_again_at<T: Maintained>(pool: &T, d: Instant) -> Option<Ms> {
    let clock = pool.clock();
    let now = Instant::now();
    let margin = margin(clock)?;
    if now + Duration::from_millis(margin) >= d || !pool.ticks_on_time(now) {
        return None;
    }
    Some(clock.at(d).saturating_sub(margin))
}

#[cfg(test)]
mod tests {
    use super::Deadline;
    use std::time::Duration;
    use tokio::time::Instant;

    #[test]
    fn a_start_left_in_nanoseconds_fixes_the_deadline_as_an_instant_would() {
        let epoch = Instant::now();
        let timeout = Duration::from_millis(250);
        let mut d = Deadline::new(Some(timeout));
        assert!(!d.started());
        assert_eq!(d.instant(), None, "not started");
        d.start_at(epoch, 1_500_000);
        assert!(d.started());
        let at = epoch + Duration::from_nanos(1_500_000) + timeout;
        // A later start neither moves it nor does a later `at`.
        d.start_at(epoch, 9_000_000_000);
        assert_eq!(d.at(epoch + Duration::from_secs(9)), Some(at));
        assert_eq!(d.instant(), Some(at));

        let mut none = Deadline::new(None);
        none.start_at(epoch, 1);
        assert!(!none.started(), "no timeout, no deadline");
        assert_eq!(none.at(epoch), None);
    }
}
