//! What happens around one initialization attempt: backoff after failures, counts, metrics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mpm_metrics::{Histogram, Registry, Unit};

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

/// Histograms of initialization time, by outcome.
#[derive(Debug, Clone)]
pub(crate) struct InitMetrics {
    ok: Histogram,
    error: Histogram,
}

impl InitMetrics {
    /// The metric every lazy value records its initialization time into.
    pub(crate) const NAME: &'static str = "mpm_lazy_init_seconds";

    pub(crate) fn new(registry: &Registry, lazy: &str) -> Result<Self, mpm_metrics::Error> {
        Ok(Self {
            ok: registry.histogram(
                Self::NAME,
                &[("lazy", lazy), ("outcome", "ok")],
                Unit::Seconds,
            )?,
            error: registry.histogram(
                Self::NAME,
                &[("lazy", lazy), ("outcome", "error")],
                Unit::Seconds,
            )?,
        })
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

    pub(crate) fn set_metrics(&mut self, metrics: InitMetrics) {
        self.metrics = Some(metrics);
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
/// records nothing but the attempt itself: neither a failure nor a backoff.
pub(crate) struct Attempt<'a> {
    policy: &'a Policy,
    start: Instant,
}

impl Attempt<'_> {
    pub(crate) fn finish(self, ok: bool) {
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
