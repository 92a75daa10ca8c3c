//! [`CircuitBreaker`]: stop calling a backend that keeps failing, try again after a cool-down.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use mpm_metrics::Registry;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::ConfigError;
use crate::metrics::{BreakerMetrics, Target};

/// The default first cool-down: short, so that a server back after a brief outage (a
/// restart takes a second or two) is probed within a second.
pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(1);

/// A failed probe doubles the cool-down, up to this many times the first one (32 s with the
/// default): a long outage is probed about twice a minute, not hammered.
pub const MAX_COOL_DOWN_FACTOR: u32 = 32;

/// The state of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through; consecutive failures are counted.
    Closed,
    /// Calls are refused until the cool-down has passed.
    Open,
    /// The cool-down has passed: one trial call goes through; its success closes the breaker,
    /// its failure opens it again.
    HalfOpen,
}

impl BreakerState {
    /// The state in lower case: `closed`, `open` or `half-open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }

    /// The value of the state gauge: 0 closed, 1 open, 2 half-open.
    pub fn as_gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// The error of [`CircuitBreaker::call`].
#[derive(Debug, thiserror::Error)]
pub enum BreakerError<E> {
    /// The breaker is open (or half-open with its trial call running); the call was not made.
    #[error("the circuit breaker is open")]
    Open,
    /// The call was made and failed.
    #[error(transparent)]
    Inner(E),
}

/// Why a [`CircuitBreaker`] refused a call, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// [`BreakerState::Open`], or [`BreakerState::HalfOpen`] while its probe runs.
    pub state: BreakerState,
    /// When the breaker lets a probe through (open), or `None` while a probe runs (half-open).
    pub probe_at: Option<Instant>,
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant, level: u32 },
    HalfOpen { trial_running: bool, level: u32 },
}

#[derive(Debug)]
struct Shared {
    threshold: NonZeroU32,
    cool_down: Duration,
    state: Mutex<Inner>,
    /// Signalled when a probe ends (the breaker closes or opens again).
    settled: Notify,
    metrics: Option<BreakerMetrics>,
}

impl std::fmt::Debug for BreakerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BreakerMetrics")
    }
}

impl Shared {
    fn state(&self) -> BreakerState {
        match &*self.state.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until, .. } if Instant::now() >= *until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// Settings of a [`CircuitBreaker`]; made by [`CircuitBreaker::builder`]. Defaults: a
/// threshold of 5 consecutive failures, a first cool-down of [`DEFAULT_COOL_DOWN`], no
/// metrics.
#[derive(Debug)]
pub struct BreakerBuilder {
    threshold: NonZeroU32,
    cool_down: Duration,
    metrics: Target,
}

impl BreakerBuilder {
    /// Consecutive failures that open the breaker.
    pub fn threshold(mut self, threshold: NonZeroU32) -> Self {
        self.threshold = threshold;
        self
    }

    /// The first cool-down (doubled after each failed probe, up to [`MAX_COOL_DOWN_FACTOR`]
    /// times).
    pub fn cool_down(mut self, cool_down: Duration) -> Self {
        self.cool_down = cool_down;
        self
    }

    /// Records the breaker's series into `registry`, labelled `name="<name>"`: the state
    /// at scrape time (`mpm_pool_breaker_state`: 0 closed, 1 open, 2 half-open) and counters
    /// of openings and refused calls. The name is claimed at [`build`](Self::build).
    pub fn metrics(mut self, registry: &Registry, name: &str) -> Self {
        self.metrics = Some((registry.clone(), name.to_owned()));
        self
    }

    /// The breaker, closed; fails if its metrics cannot be registered (the name is taken).
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        let metrics = match &self.metrics {
            Some((registry, name)) => Some(BreakerMetrics::register(registry, name)?),
            None => None,
        };
        let breaker = CircuitBreaker {
            shared: Arc::new(Shared {
                threshold: self.threshold,
                cool_down: self.cool_down,
                state: Mutex::new(Inner::Closed { failures: 0 }),
                settled: Notify::new(),
                metrics,
            }),
        };
        if let Some(m) = &breaker.shared.metrics {
            m.collect(&breaker.shared, |s| s.state().as_gauge());
        }
        Ok(breaker)
    }
}

/// A circuit breaker: closed; open after `threshold` consecutive failures (default 5);
/// half-open when the cool-down has passed, letting one probe through; closed again on a
/// success. The first cool-down is `cool_down` ([`DEFAULT_COOL_DOWN`], 1 s, by default);
/// each failed probe doubles it, up to [`MAX_COOL_DOWN_FACTOR`] times the first. Cloning
/// shares the state. Use it around any async call with [`CircuitBreaker::call`], or give it
/// to a pool with [`Builder::circuit_breaker`](crate::Builder::circuit_breaker) to guard
/// creation: an acquire that would create then waits for the probe, within its deadline,
/// instead of failing at once.
///
/// ```
/// use mpm_pool::{BreakerError, BreakerState, CircuitBreaker};
/// use std::num::NonZeroU32;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let breaker = CircuitBreaker::new(NonZeroU32::new(2).unwrap(), Duration::from_secs(30));
/// for _ in 0..2 {
///     let r: Result<(), _> = breaker.call(async { Err::<(), _>("down") }).await;
///     assert!(matches!(r, Err(BreakerError::Inner("down"))));
/// }
/// assert_eq!(breaker.state(), BreakerState::Open);
/// let r = breaker.call(async { Ok::<_, &str>(()) }).await;
/// assert!(matches!(r, Err(BreakerError::Open)));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker::new(
            NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            DEFAULT_COOL_DOWN,
        )
    }
}

impl CircuitBreaker {
    /// A closed breaker that opens after `threshold` consecutive failures and lets a probe
    /// through after `cool_down` (doubled after each failed probe, up to
    /// [`MAX_COOL_DOWN_FACTOR`] times).
    pub fn new(threshold: NonZeroU32, cool_down: Duration) -> Self {
        CircuitBreaker {
            shared: Arc::new(Shared {
                threshold,
                cool_down,
                state: Mutex::new(Inner::Closed { failures: 0 }),
                settled: Notify::new(),
                metrics: None,
            }),
        }
    }

    /// A builder, for a breaker that records metrics (or to name its settings).
    ///
    /// ```
    /// use mpm_pool::CircuitBreaker;
    /// use std::num::NonZeroU32;
    ///
    /// let registry = mpm_metrics::Registry::default();
    /// let breaker = CircuitBreaker::builder()
    ///     .threshold(NonZeroU32::new(3).unwrap())
    ///     .metrics(&registry, "pg")
    ///     .build()?;
    /// assert!(breaker.try_begin());
    /// breaker.record_success();
    /// assert!(registry.render_prometheus().contains("mpm_pool_breaker_state{name=\"pg\"} 0\n"));
    /// # Ok::<(), mpm_pool::ConfigError>(())
    /// ```
    pub fn builder() -> BreakerBuilder {
        BreakerBuilder {
            threshold: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            cool_down: DEFAULT_COOL_DOWN,
            metrics: None,
        }
    }

    /// The current state (an open breaker whose cool-down has passed reads as half-open).
    pub fn state(&self) -> BreakerState {
        self.shared.state()
    }

    /// Asks to make a call: `true` if it may go ahead. Every `true` must be followed by
    /// [`record_success`](Self::record_success) or [`record_failure`](Self::record_failure)
    /// (or [`record_abandoned`](Self::record_abandoned) if the call was never finished).
    pub fn try_begin(&self) -> bool {
        self.begin().is_ok()
    }

    /// Like [`try_begin`](Self::try_begin), and when refused says why and when to try again.
    pub fn begin(&self) -> Result<(), Refused> {
        let mut state = self.shared.state.lock();
        let allowed = match &mut *state {
            Inner::Closed { .. } => Ok(()),
            Inner::Open { until, level } => {
                if Instant::now() >= *until {
                    *state = Inner::HalfOpen {
                        trial_running: true,
                        level: *level,
                    };
                    Ok(())
                } else {
                    Err(Refused {
                        state: BreakerState::Open,
                        probe_at: Some(*until),
                    })
                }
            }
            Inner::HalfOpen { trial_running, .. } => {
                if *trial_running {
                    Err(Refused {
                        state: BreakerState::HalfOpen,
                        probe_at: None,
                    })
                } else {
                    *trial_running = true;
                    Ok(())
                }
            }
        };
        drop(state);
        if let (Err(_), Some(m)) = (&allowed, &self.shared.metrics) {
            m.refused.inc();
        }
        allowed
    }

    /// Waits until a refused call may be tried again: until `refused.probe_at`, or until the
    /// running probe ends. Returns at once if the breaker already settled.
    pub async fn wait(&self, refused: Refused) {
        let settled = self.shared.settled.notified();
        let mut settled = std::pin::pin!(settled);
        settled.as_mut().enable();
        match refused.probe_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => {
                let probing = matches!(
                    &*self.shared.state.lock(),
                    Inner::HalfOpen {
                        trial_running: true,
                        ..
                    }
                );
                if probing {
                    settled.await;
                }
            }
        }
    }

    /// A call succeeded: the breaker closes and the failure count restarts.
    pub fn record_success(&self) {
        let mut state = self.shared.state.lock();
        *state = Inner::Closed { failures: 0 };
        drop(state);
        self.shared.settled.notify_waiters();
    }

    /// A call failed: one more consecutive failure; at the threshold, or in half-open, the
    /// breaker opens for the cool-down.
    pub fn record_failure(&self) {
        let mut state = self.shared.state.lock();
        let level = match &mut *state {
            Inner::Closed { failures } => {
                *failures = failures.saturating_add(1);
                (*failures >= self.shared.threshold.get()).then_some(0)
            }
            // A failed probe: the next cool-down is twice as long.
            Inner::HalfOpen { level, .. } => Some(level.saturating_add(1)),
            Inner::Open { level, .. } => Some(*level),
        };
        if let Some(level) = level {
            let factor = 1u32
                .checked_shl(level)
                .unwrap_or(u32::MAX)
                .min(MAX_COOL_DOWN_FACTOR);
            let opened = !matches!(*state, Inner::Open { .. });
            *state = Inner::Open {
                until: Instant::now() + self.shared.cool_down.saturating_mul(factor),
                level,
            };
            if let (true, Some(m)) = (opened, &self.shared.metrics) {
                m.opened.inc();
            }
        }
        drop(state);
        self.shared.settled.notify_waiters();
    }

    /// A call that was allowed never finished (it was cancelled): a half-open trial slot is
    /// freed; nothing else changes.
    pub fn record_abandoned(&self) {
        let mut state = self.shared.state.lock();
        if let Inner::HalfOpen { trial_running, .. } = &mut *state {
            *trial_running = false;
        }
        drop(state);
        self.shared.settled.notify_waiters();
    }

    /// Runs `call` if the breaker allows it and records the outcome. A cancelled call frees
    /// its half-open trial slot.
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, BreakerError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        if !self.try_begin() {
            return Err(BreakerError::Open);
        }
        let guard = Abandon(self);
        let result = call.await;
        std::mem::forget(guard);
        match result {
            Ok(v) => {
                self.record_success();
                Ok(v)
            }
            Err(e) => {
                self.record_failure();
                Err(BreakerError::Inner(e))
            }
        }
    }
}

/// Frees a half-open trial slot if the call is dropped before it finishes.
struct Abandon<'a>(&'a CircuitBreaker);

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        self.0.record_abandoned();
    }
}
