//! What happens around one initialization attempt: backoff after failures, counts, metrics.

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mpm_metrics::{Counter, Histogram, Registry, Scope, Unit};

use crate::Error;

/// How long to wait before retrying an initialization that failed.
///
/// The delay after `n` consecutive failures is `initial * factor^(n-1)`, capped at `max`. A
/// success clears the count. Only the next attempt waits: [`crate::Lazy::get`] never waits.
///
/// ```
/// use std::time::Duration;
/// use mpm_lazy::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1));
/// assert_eq!(backoff.delay_after(1), Duration::from_millis(10));
/// assert_eq!(backoff.delay_after(3), Duration::from_millis(40));
/// assert_eq!(backoff.delay_after(30), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: u32,
}

impl Backoff {
    /// Doubles the delay after every consecutive failure, from `initial` up to `max`.
    pub const fn exponential(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            factor: 2,
        }
    }

    /// Waits `delay` after every failure.
    pub const fn constant(delay: Duration) -> Self {
        Self {
            initial: delay,
            max: delay,
            factor: 1,
        }
    }

    /// The delay before the attempt that follows `failures` consecutive failures.
    pub fn delay_after(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let scale = self.factor.saturating_pow(failures - 1);
        self.initial.saturating_mul(scale).min(self.max)
    }
}

/// Counts of a lazy value's initialization attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InitStats {
    /// Attempts started, including ones that failed, panicked or were cancelled.
    pub attempts: u64,
    /// Attempts that returned an error.
    pub failures: u64,
    /// Attempts that produced the value.
    pub successes: u64,
    /// Resets so far (the current generation).
    pub generation: u64,
}

/// The metrics of one lazy value (see the crate's table of metrics): the scope it claimed, the
/// init-time histogram by outcome and the resets counter.
#[derive(Debug)]
pub(crate) struct InitMetrics {
    ok: Histogram,
    error: Histogram,
    abandoned: Histogram,
    resets: Counter,
    // Held so the name stays claimed for as long as the lazy value lives; never used otherwise,
    // so a panic cannot leave it half-changed (which keeps `Lazy` unwind safe).
    _scope: AssertUnwindSafe<Scope>,
}

impl InitMetrics {
    /// The component of every lazy value's metrics: `mpm_lazy_*`.
    pub(crate) const COMPONENT: &'static str = "lazy";

    pub(crate) fn new(registry: &Registry, name: &str) -> Result<Self, mpm_metrics::Error> {
        let scope = registry.scope(Self::COMPONENT, name)?;
        let init = |outcome| {
            scope.histogram(
                "init_seconds",
                "Time spent in each initialization attempt, by outcome (ok, error, or abandoned by a panic or a cancelled future).",
                Unit::Seconds,
                &[("outcome", outcome)],
            )
        };
        Ok(Self {
            ok: init("ok")?,
            error: init("error")?,
            abandoned: init("abandoned")?,
            resets: scope.counter(
                "resets_total",
                "Calls to reset() that forgot a built value or an empty generation.",
                &[],
            )?,
            _scope: AssertUnwindSafe(scope),
        })
    }
}

/// What a builder of a lazy value collects before `build`: the backoff and the metrics'
/// registry and name, claimed only at `build` so a chain of builder calls never fails half-way.
#[derive(Debug, Default)]
pub(crate) struct Settings {
    pub(crate) backoff: Option<Backoff>,
    pub(crate) metrics: Option<(Registry, String)>,
}

impl Settings {
    pub(crate) fn build(self) -> Result<Policy, Error> {
        let mut policy = Policy::new();
        if let Some(backoff) = self.backoff {
            policy.set_backoff(backoff);
        }
        if let Some((registry, name)) = self.metrics {
            policy.metrics = Some(InitMetrics::new(&registry, &name)?);
        }
        Ok(policy)
    }
}

#[derive(Debug, Default)]
struct Failures {
    consecutive: u32,
    last: Option<Instant>,
}

/// The state every lazy value keeps about its attempts; touched only on the cold path.
#[derive(Debug)]
pub(crate) struct Policy {
    backoff: Option<Backoff>,
    metrics: Option<InitMetrics>,
    failures: Mutex<Failures>,
    attempts: AtomicU64,
    failed: AtomicU64,
    succeeded: AtomicU64,
}

impl Policy {
    pub(crate) const fn new() -> Self {
        Self {
            backoff: None,
            metrics: None,
            failures: Mutex::new(Failures {
                consecutive: 0,
                last: None,
            }),
            attempts: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
        }
    }

    pub(crate) const fn set_backoff(&mut self, backoff: Backoff) {
        self.backoff = Some(backoff);
    }

    /// Counts a reset in the metrics, if any.
    pub(crate) fn record_reset(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.resets.inc();
        }
    }

    /// How long the next attempt must wait because of earlier failures.
    pub(crate) fn delay(&self) -> Duration {
        let Some(backoff) = self.backoff else {
            return Duration::ZERO;
        };
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match failures.last {
            Some(last) => backoff
                .delay_after(failures.consecutive)
                .saturating_sub(last.elapsed()),
            None => Duration::ZERO,
        }
    }

    /// Starts an attempt; the returned guard records its outcome.
    pub(crate) fn begin(&self) -> Attempt<'_> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        Attempt {
            policy: self,
            start: Instant::now(),
            finished: false,
        }
    }

    pub(crate) fn stats(&self, generation: u64) -> InitStats {
        InitStats {
            attempts: self.attempts.load(Ordering::Relaxed),
            failures: self.failed.load(Ordering::Relaxed),
            successes: self.succeeded.load(Ordering::Relaxed),
            generation,
        }
    }
}

/// One running attempt. Dropped without [`Attempt::finish`] (a panic or a cancelled future), it
/// records the attempt as abandoned: neither a failure nor a backoff.
pub(crate) struct Attempt<'a> {
    policy: &'a Policy,
    start: Instant,
    finished: bool,
}

impl Attempt<'_> {
    pub(crate) fn finish(mut self, ok: bool) {
        self.finished = true;
        let elapsed = self.start.elapsed();
        let policy = self.policy;
        if let Some(metrics) = &policy.metrics {
            let histogram = if ok { &metrics.ok } else { &metrics.error };
            histogram.record_duration(elapsed);
        }
        let mut failures = policy
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if ok {
            policy.succeeded.fetch_add(1, Ordering::Relaxed);
            *failures = Failures::default();
        } else {
            policy.failed.fetch_add(1, Ordering::Relaxed);
            failures.consecutive = failures.consecutive.saturating_add(1);
            failures.last = Some(Instant::now());
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.finished
            && let Some(metrics) = &self.policy.metrics
        {
            metrics.abandoned.record_duration(self.start.elapsed());
        }
    }
}
