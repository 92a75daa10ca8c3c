//! [`AsyncLazy`]: a value built on first use by an async function, retried instead of poisoned.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;

use aliasable::boxed::AliasableBox;
use futures::future::BoxFuture;
use mpm_metrics::Registry;
use tokio::sync::OnceCell;

use crate::Error;
use crate::policy::{Backoff, InitStats, Policy, Settings};
use crate::published::Published;

/// A value built on first use by the async function `init`.
///
/// Concurrent first callers wait (without blocking a thread) for one attempt at a time. A failed
/// attempt is not cached: its error goes to the caller that ran it, and the next waiter runs a new
/// attempt (after an optional [`Backoff`], which needs a Tokio runtime with the time driver). An
/// attempt that panics or whose future is dropped (cancelled) poisons nothing: the next waiter
/// takes over. At most one attempt per generation succeeds.
///
/// [`reset`](AsyncLazy::reset) works through `&self` with the same rule as [`Lazy`](crate::Lazy):
/// old values stay alive until [`compact`](AsyncLazy::compact) or drop. The warm read
/// ([`get`](AsyncLazy::get)) is synchronous: one acquire load and one branch, like
/// `OnceLock::get`; the value is kept in its own heap allocation.
///
/// ```
/// use mpm_lazy::AsyncLazy;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let profiles = AsyncLazy::new(|| async {
///     // Imagine a slow scan of the agents directory here.
///     Ok::<_, std::io::Error>(vec!["engineer", "qa"])
/// });
/// assert!(profiles.get().is_none());
/// assert_eq!(profiles.get_or_init().await.unwrap().len(), 2);
/// assert!(profiles.get().is_some()); // the warm read is synchronous
/// # }
/// ```
pub struct AsyncLazy<T, E, F = fn() -> BoxFuture<'static, Result<T, E>>> {
    cells: Published<OnceCell<AliasableBox<T>>>,
    policy: Policy,
    init: F,
    // The error type only flows out of `init`; `fn() -> E` keeps `Send`/`Sync` independent of it.
    error: PhantomData<fn() -> E>,
}

impl<T, E, F> AsyncLazy<T, E, F> {
    /// A lazy value that `init` builds on first use. Usable in a `static`.
    pub const fn new(init: F) -> Self {
        Self {
            cells: Published::new(OnceCell::const_new()),
            policy: Policy::new(),
            init,
            error: PhantomData,
        }
    }

    /// Waits according to `backoff` before retrying after a failed attempt. The wait uses
    /// `tokio::time::sleep`, so it needs a Tokio runtime with the time driver enabled.
    #[must_use]
    pub const fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.policy.set_backoff(backoff);
        self
    }

    /// A builder, for a lazy value with metrics (and, optionally, a backoff); [`AsyncLazy::new`]
    /// is the shorter way to a lazy value without metrics.
    pub fn builder<Fut>(init: F) -> AsyncLazyBuilder<T, E, F>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        AsyncLazyBuilder {
            init,
            settings: Settings::default(),
            value: PhantomData,
        }
    }

    /// The value, if it is built; never initializes and never waits.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        self.cells.get()
    }

    /// Whether the current generation holds a value.
    pub fn is_initialized(&self) -> bool {
        self.get().is_some()
    }

    /// Forgets the value: the next [`get_or_init`](AsyncLazy::get_or_init) builds a new one.
    /// Returns whether a value was built. See [`Lazy::reset`](crate::Lazy::reset).
    pub fn reset(&self) -> bool {
        let had_value = self.is_initialized();
        self.cells.advance(OnceCell::const_new());
        self.policy.record_reset();
        had_value
    }

    /// Resets so far; 0 until the first [`reset`](AsyncLazy::reset).
    pub fn generation(&self) -> u64 {
        self.cells.generation()
    }

    /// Earlier generations (values from before a reset) still kept alive.
    pub fn retained_generations(&self) -> usize {
        self.cells.retained()
    }

    /// Drops the values of earlier generations; `&mut self` proves nobody borrows them.
    pub fn compact(&mut self) {
        self.cells.compact(OnceCell::const_new());
    }

    /// Takes the current value out; the next read builds a new one.
    pub fn take(&mut self) -> Option<T> {
        self.cells.take()
    }

    /// Counts of attempts, failures and successes.
    pub fn stats(&self) -> InitStats {
        self.policy.stats(self.generation())
    }
}

impl<T, E, F, Fut> AsyncLazy<T, E, F>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    /// The value, built by this call if needed.
    ///
    /// Cancel safe: dropping the returned future while it runs the attempt abandons that attempt
    /// and lets the next waiter start a new one.
    ///
    /// # Errors
    ///
    /// The init function's error, when the attempt this caller ran failed. Nothing is cached.
    pub async fn get_or_init(&self) -> Result<&T, E> {
        if let Some(value) = self.cells.get() {
            return Ok(value);
        }
        let (generation, cell) = self.cells.current();
        let value = cell.get_or_try_init(|| self.attempt()).await?;
        self.cells.publish(generation);
        Ok(value)
    }

    async fn attempt(&self) -> Result<AliasableBox<T>, E> {
        let delay = self.policy.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let attempt = self.policy.begin();
        let result = (self.init)().await;
        attempt.finish(result.is_ok());
        result.map(|value| AliasableBox::from_unique(Box::new(value)))
    }
}

impl<T: fmt::Debug, E, F> fmt::Debug for AsyncLazy<T, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncLazy")
            .field("value", &self.get())
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

/// Builds a [`AsyncLazy`] that reports into a metrics registry: `AsyncLazy::builder(init)`, then
/// [`metrics`](AsyncLazyBuilder::metrics) and [`backoff`](AsyncLazyBuilder::backoff) in any order, then
/// [`build`](AsyncLazyBuilder::build).
pub struct AsyncLazyBuilder<T, E, F> {
    init: F,
    settings: Settings,
    value: PhantomData<fn() -> (T, E)>,
}

impl<T, E, F> AsyncLazyBuilder<T, E, F> {
    /// Reports into `registry` under the instance name `name` (the label `name`): the metrics
    /// listed in the [crate docs](crate#metrics). The name is claimed at
    /// [`build`](AsyncLazyBuilder::build).
    #[must_use]
    pub fn metrics(mut self, registry: &Registry, name: &str) -> Self {
        self.settings.metrics = Some((registry.clone(), name.to_owned()));
        self
    }

    /// Waits according to `backoff` before retrying after a failed attempt.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = Some(backoff);
        self
    }

    /// The lazy value; nothing is built yet.
    ///
    /// # Errors
    ///
    /// [`Error::Metrics`] when the registry refuses the metrics, for example because another
    /// lazy value of the same name reports into it.
    pub fn build(self) -> Result<AsyncLazy<T, E, F>, Error> {
        let mut lazy = AsyncLazy::new(self.init);
        lazy.policy = self.settings.build()?;
        Ok(lazy)
    }
}

impl<T, E, F> fmt::Debug for AsyncLazyBuilder<T, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncLazyBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}
