//! Deadlines of an acquire and the steps bounded by them, shared by both pools.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

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
    // The timer is boxed: this path waits on I/O anyway, and a `Sleep` in place would make
    // every future that holds this one larger (each get's, moved on every call).
    let mut sleep = Box::pin(tokio::time::sleep_until(end));
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
