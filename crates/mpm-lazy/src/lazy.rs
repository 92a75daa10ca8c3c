//! [`Lazy`]: a value built on first use by a function that may fail, retried instead of poisoned.

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;

use aliasable::boxed::AliasableBox;
use mpm_metrics::Registry;
use once_cell::sync::OnceCell;

use crate::Error;
use crate::policy::{Backoff, InitStats, Policy, Settings};
use crate::published::Published;

/// A value built on first use by `init`, shared by every thread.
///
/// Unlike `std::sync::LazyLock`, the init function may fail: the error goes to the caller and
/// nothing is cached, so the next caller tries again (after an optional [`Backoff`]). An init that
/// panics poisons nothing either. Concurrent first callers wait for one attempt at a time; at most
/// one attempt per generation succeeds.
///
/// [`reset`](Lazy::reset) works through `&self`: the next read builds a new value. Because readers
/// may still hold `&T` borrowed from the old value, the old value is kept until the `Lazy` is
/// dropped or [`compact`](Lazy::compact) is called through `&mut self`. For values replaced often,
/// prefer [`Swap`](crate::Swap), which frees each old value when its last reader is done.
///
/// The warm read ([`get`](Lazy::get), [`get_or_init`](Lazy::get_or_init) once built) is one
/// acquire load and one branch, like `OnceLock::get`, with no lock and no read-modify-write. The
/// value is kept in its own heap allocation (one allocation per successful initialization), so it
/// stays where it is when the `Lazy` moves.
///
/// ```
/// use mpm_lazy::Lazy;
///
/// static GREETING: Lazy<String, std::num::ParseIntError> =
///     Lazy::new(|| Ok(format!("agent #{}", "7".parse::<u32>()?)));
///
/// assert_eq!(GREETING.get(), None); // `get` never initializes
/// assert_eq!(GREETING.get_or_init().unwrap(), "agent #7");
/// assert_eq!(GREETING.get().map(String::as_str), Some("agent #7"));
/// ```
///
/// With a backoff between failed attempts, still in a `static`:
///
/// ```
/// use std::time::Duration;
/// use mpm_lazy::{Backoff, Lazy};
///
/// fn scan_agents() -> Result<Vec<u32>, std::io::Error> {
///     Ok(vec![1, 2, 3])
/// }
///
/// // A method call does not coerce the function to the pointer type the static names, so the
/// // types are spelled out and the function is cast.
/// static INDEX: Lazy<Vec<u32>, std::io::Error> =
///     Lazy::<Vec<u32>, std::io::Error>::new(scan_agents as fn() -> _)
///         .with_backoff(Backoff::exponential(Duration::from_millis(50), Duration::from_secs(5)));
/// assert_eq!(INDEX.get_or_init()?.len(), 3);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A failed init is not cached:
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use mpm_lazy::Lazy;
///
/// static CALLS: AtomicU32 = AtomicU32::new(0);
/// let lazy = Lazy::new(|| match CALLS.fetch_add(1, Ordering::Relaxed) {
///     0 => Err("database not up yet"),
///     n => Ok(n),
/// });
/// assert_eq!(lazy.get_or_init(), Err("database not up yet"));
/// assert_eq!(lazy.get_or_init(), Ok(&1));
/// assert_eq!(lazy.stats().attempts, 2);
/// ```
pub struct Lazy<T, E = Infallible, F = fn() -> Result<T, E>> {
    cells: Published<OnceCell<AliasableBox<T>>>,
    policy: Policy,
    init: F,
    // The error type only flows out of `init`; `fn() -> E` keeps `Send`/`Sync` independent of it.
    error: PhantomData<fn() -> E>,
}

impl<T, E, F> Lazy<T, E, F> {
    /// A lazy value that `init` builds on first use. Usable in a `static`.
    pub const fn new(init: F) -> Self {
        Self {
            cells: Published::new(OnceCell::new()),
            policy: Policy::new(),
            init,
            error: PhantomData,
        }
    }

    /// Waits according to `backoff` before retrying after a failed attempt.
    #[must_use]
    pub const fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.policy.set_backoff(backoff);
        self
    }

    /// A builder, for a lazy value with metrics (and, optionally, a backoff); [`Lazy::new`]
    /// is the shorter way to a lazy value without metrics.
    pub fn builder(init: F) -> LazyBuilder<T, E, F>
    where
        F: Fn() -> Result<T, E>,
    {
        LazyBuilder {
            init,
            settings: Settings::default(),
            value: PhantomData,
        }
    }

    /// The value, if it is built; never initializes.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        self.cells.get()
    }

    /// Whether the current generation holds a value.
    pub fn is_initialized(&self) -> bool {
        self.get().is_some()
    }

    /// Forgets the value: the next [`get_or_init`](Lazy::get_or_init) builds a new one.
    ///
    /// Callers already waiting for an attempt that is running get that attempt's value. The old
    /// value stays alive (readers may borrow it) until [`compact`](Lazy::compact) or drop.
    /// Returns whether a value was built.
    pub fn reset(&self) -> bool {
        let had_value = self.is_initialized();
        self.cells.advance(OnceCell::new());
        self.policy.record_reset();
        had_value
    }

    /// Resets so far; 0 until the first [`reset`](Lazy::reset).
    pub fn generation(&self) -> u64 {
        self.cells.generation()
    }

    /// Earlier generations (values from before a reset) still kept alive.
    pub fn retained_generations(&self) -> usize {
        self.cells.retained()
    }

    /// Drops the values of earlier generations; `&mut self` proves nobody borrows them.
    pub fn compact(&mut self) {
        self.cells.compact(OnceCell::new());
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

impl<T, E, F> Lazy<T, E, F>
where
    F: Fn() -> Result<T, E>,
{
    /// The value, built by this call if needed.
    ///
    /// # Errors
    ///
    /// The init function's error, when the attempt this caller made failed. Nothing is cached:
    /// the next call tries again.
    #[inline]
    pub fn get_or_init(&self) -> Result<&T, E> {
        match self.get() {
            Some(value) => Ok(value),
            None => self.initialize(),
        }
    }

    #[cold]
    #[inline(never)]
    fn initialize(&self) -> Result<&T, E> {
        let (generation, cell) = self.cells.current();
        let value = cell.get_or_try_init(|| {
            let delay = self.policy.delay();
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            let attempt = self.policy.begin();
            let result = (self.init)();
            attempt.finish(result.is_ok());
            result.map(|value| AliasableBox::from_unique(Box::new(value)))
        })?;
        self.cells.publish(generation);
        Ok(value)
    }
}

impl<T, F> Lazy<T, Infallible, F>
where
    F: Fn() -> Result<T, Infallible>,
{
    /// The value, built by this call if needed; for init functions that cannot fail.
    #[inline]
    pub fn force(&self) -> &T {
        match self.get_or_init() {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }
}

impl<T, F> std::ops::Deref for Lazy<T, Infallible, F>
where
    F: Fn() -> Result<T, Infallible>,
{
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        self.force()
    }
}

impl<T: fmt::Debug, E, F> fmt::Debug for Lazy<T, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lazy")
            .field("value", &self.get())
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Lazy`] that reports into a metrics registry: `Lazy::builder(init)`, then
/// [`metrics`](LazyBuilder::metrics) and [`backoff`](LazyBuilder::backoff) in any order, then
/// [`build`](LazyBuilder::build).
pub struct LazyBuilder<T, E, F> {
    init: F,
    settings: Settings,
    value: PhantomData<fn() -> (T, E)>,
}

impl<T, E, F> LazyBuilder<T, E, F> {
    /// Reports into `registry` under the instance name `name` (the label `name`): the metrics
    /// listed in the [crate docs](crate#metrics). The name is claimed at
    /// [`build`](LazyBuilder::build).
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
    pub fn build(self) -> Result<Lazy<T, E, F>, Error> {
        let mut lazy = Lazy::new(self.init);
        lazy.policy = self.settings.build()?;
        Ok(lazy)
    }
}

impl<T, E, F> fmt::Debug for LazyBuilder<T, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}
