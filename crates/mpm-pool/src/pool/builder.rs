//! [`Builder`]: a [`Pool`]'s settings, ending in `build()`.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use mpm_metrics::Registry;

use super::Pool;
use crate::breaker::CircuitBreaker;
use crate::config::{Config, LeakReport, MAX_SIZE_LIMIT, QueueMode};
use crate::error::{BuildError, ConfigError};
use crate::manager::Manager;

/// Settings of a [`Pool`]; made by [`Pool::builder`].
///
/// Defaults: `max_size` 10, `min_idle` 0, acquire timeout 30 s, create timeout 10 s, validate
/// and recycle timeouts 5 s, max lifetime 30 min, idle timeout 10 min, no keepalive, skip
/// validation for objects used within 500 ms, FIFO idle order, no leak detection, maintenance
/// every 30 s, no metrics, no circuit breaker.
pub struct Builder<M: Manager> {
    manager: M,
    config: Config,
}

impl<M: Manager> std::fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("max_size", &self.config.max_size)
            .field("min_idle", &self.config.min_idle)
            .finish_non_exhaustive()
    }
}

impl<M: Manager> Builder<M> {
    pub(crate) fn new(manager: M) -> Self {
        Builder {
            manager,
            config: Config::default(),
        }
    }

    /// The most objects the pool holds at once, idle and in use together (at least one).
    pub fn max_size(mut self, max_size: NonZeroUsize) -> Self {
        self.config.max_size = max_size.get();
        self
    }

    /// The number of idle objects created at build and kept by the maintenance task
    /// (HikariCP's `minimumIdle`). Never above `max_size`.
    pub fn min_idle(mut self, min_idle: usize) -> Self {
        self.config.min_idle = min_idle;
        self
    }

    /// The longest a [`Pool::get`] waits in total, creation and validation included.
    /// `None` waits for ever (and a failed creation is then returned at once, not retried).
    pub fn acquire_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.acquire_timeout = timeout;
        self
    }

    /// The longest one [`Manager::create`] may take.
    pub fn create_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.create_timeout = timeout;
        self
    }

    /// The longest one [`Manager::validate`] may take; past it the object is closed.
    pub fn validate_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.validate_timeout = timeout;
        self
    }

    /// The longest one [`Manager::recycle`] may take; past it the object is closed.
    pub fn recycle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.recycle_timeout = timeout;
        self
    }

    /// Objects older than this are closed (when idle or returned). Each object's lifetime is
    /// shortened by a random 0-5% so that objects created together do not expire together.
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.config.max_lifetime = lifetime;
        self
    }

    /// Idle objects unused for this long are closed, but never below `min_idle`.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// The maintenance task validates objects idle for this long (shortened by a random 0-10%
    /// per check), so that a server or a proxy does not drop them unnoticed.
    pub fn keepalive(mut self, interval: Option<Duration>) -> Self {
        self.config.keepalive = interval;
        self
    }

    /// An idle object created or validated within this window is handed out without
    /// [`Manager::validate`] (500 ms by default, HikariCP's window). Use does not count: a
    /// caller's command may have failed on it. `Duration::ZERO` validates every time.
    pub fn skip_validation_within(mut self, window: Duration) -> Self {
        self.config.skip_validation_within = window;
        self
    }

    /// FIFO (the default) or LIFO order of idle objects.
    pub fn queue_mode(mut self, mode: QueueMode) -> Self {
        self.config.queue_mode = mode;
        self
    }

    /// Reports objects held longer than `threshold` with the place they were acquired, through
    /// `tracing` (a warning), the `leaks` counter and the hook of [`Builder::on_leak`]. Needs
    /// the maintenance task, which then wakes at least every tenth of the threshold. A
    /// reported object that comes back later is closed (reason
    /// [`CloseReason::Leaked`](crate::CloseReason::Leaked)) instead of lent again, since it
    /// was held past the threshold in a state the pool cannot vouch for.
    pub fn leak_detection(mut self, threshold: Option<Duration>) -> Self {
        self.config.leak_threshold = threshold;
        self
    }

    /// A function called once for each leak report.
    pub fn on_leak(mut self, hook: impl Fn(&LeakReport) + Send + Sync + 'static) -> Self {
        self.config.on_leak = Some(Arc::new(hook));
        self
    }

    /// How often the background maintenance task runs (lifetimes, idle timeouts, keepalive,
    /// refilling `min_idle`, leak detection); `None` switches it off, and then expired
    /// objects are only noticed when they are acquired or returned.
    pub fn maintenance_interval(mut self, interval: Option<Duration>) -> Self {
        self.config.maintenance = interval;
        self
    }

    /// The first and the longest pause between creation attempts after a failure (doubled
    /// after each failure, with jitter). Defaults: 10 ms and 1 s. A successful creation
    /// ends the other places' pauses at once and resets the backoff.
    pub fn create_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.backoff_min = min;
        self.config.backoff_max = max.max(min);
        self
    }

    /// Records the pool's series into `registry` (`mpm_pool_*`, each labelled
    /// `name="<name>"`; see the crate's table of metrics). The name is claimed at build: a
    /// second pool of the same name in one registry fails there with
    /// [`ConfigError::Metrics`].
    pub fn metrics(mut self, registry: &Registry, name: &str) -> Self {
        self.config.registry = Some((registry.clone(), name.to_owned()));
        self
    }

    /// Guards object creation with `breaker`: while it is open, an acquire that would create
    /// waits (without polling) for the breaker's probe, which goes out as soon as the
    /// cool-down ends, and fails with [`Error::CircuitOpen`](crate::Error::CircuitOpen) (the
    /// state, and when the next probe goes out) only when its deadline comes first.
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.config.breaker = Some(breaker);
        self
    }

    fn check(&self) -> Result<(), ConfigError> {
        let c = &self.config;
        if c.max_size > MAX_SIZE_LIMIT {
            return Err(ConfigError::TooLarge(c.max_size));
        }
        if c.min_idle > c.max_size {
            return Err(ConfigError::MinIdleAboveMax {
                min_idle: c.min_idle,
                max_size: c.max_size,
            });
        }
        let positive = [
            ("acquire_timeout", c.acquire_timeout),
            ("create_timeout", c.create_timeout),
            ("validate_timeout", c.validate_timeout),
            ("recycle_timeout", c.recycle_timeout),
            ("max_lifetime", c.max_lifetime),
            ("idle_timeout", c.idle_timeout),
            ("keepalive", c.keepalive),
            ("leak_detection", c.leak_threshold),
            ("maintenance_interval", c.maintenance),
        ];
        for (name, d) in positive {
            if d == Some(Duration::ZERO) {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        Ok(())
    }

    /// Builds the pool without creating any object; the maintenance task (if on) fills
    /// `min_idle` in the background. Must be called within a Tokio runtime if maintenance is
    /// on.
    pub fn build_lazy(self) -> Result<Pool<M>, ConfigError> {
        self.check()?;
        Pool::from_parts(self.manager, self.config)
    }

    /// Builds the pool and creates `min_idle` objects before returning. Must be called within
    /// a Tokio runtime.
    pub async fn build(self) -> Result<Pool<M>, BuildError<M::Error>> {
        let pool = self.build_lazy()?;
        pool.fill_min_idle().await.map_err(BuildError::Initial)?;
        Ok(pool)
    }
}
