//! Deadlines of an acquire and the steps bounded by them, shared by both pools.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

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
/// clock.
pub(crate) struct Deadline {
    timeout: Option<Duration>,
    at: Option<Instant>,
}

impl Deadline {
    pub(crate) fn new(timeout: Option<Duration>) -> Self {
        Deadline { timeout, at: None }
    }

    /// The deadline, starting the count at `now` if it has not started.
    pub(crate) fn at(&mut self, now: Instant) -> Option<Instant> {
        let timeout = self.timeout?;
        Some(*self.at.get_or_insert(now + timeout))
    }
}
