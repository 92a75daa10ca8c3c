//! Calls into the [`Manager`](crate::Manager) that survive its panics: a panic becomes a
//! [`Panicked`] value that names the method, and the pool's bookkeeping never unwinds.

use std::any::Any;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::task::Poll;

/// A manager method panicked.
#[derive(Debug, Clone)]
pub(crate) struct Panicked {
    /// The method: `create`, `validate`, `recycle`, `is_broken` or `close`.
    pub(crate) method: &'static str,
    /// The panic's message, if it was a string.
    pub(crate) message: String,
}

impl Panicked {
    fn new(method: &'static str, payload: &(dyn Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        tracing::error!(method, %message, "a pool manager method panicked");
        Panicked { method, message }
    }
}

/// Runs `f`, a call of the manager's `method`, catching a panic.
pub(crate) fn call<R>(method: &'static str, f: impl FnOnce() -> R) -> Result<R, Panicked> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| Panicked::new(method, &*p))
}

/// Polls `fut`, a call of the manager's async `method`, once, catching a panic.
#[inline]
pub(crate) fn poll<F: Future + ?Sized>(
    method: &'static str,
    fut: std::pin::Pin<&mut F>,
    cx: &mut std::task::Context<'_>,
) -> Poll<Result<F::Output, Panicked>> {
    match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
        Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(p) => Poll::Ready(Err(Panicked::new(method, &*p))),
    }
}

/// Awaits `fut`, a call of the manager's async `method`, catching a panic in any poll. Make
/// the future with an `async` block around the call, so that a panic in the call itself is
/// caught too.
pub(crate) async fn call_async<F: Future>(
    method: &'static str,
    fut: F,
) -> Result<F::Output, Panicked> {
    let mut fut = pin!(fut);
    poll_fn(|cx| poll(method, fut.as_mut(), cx)).await
}
