//! [`KeyedBuilder`]: the settings of a [`KeyedPool`], ending in `build()`.

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::time::Duration;

use mpm_metrics::Registry;

use super::{KeyedConfig, KeyedManager, KeyedPool};
use crate::error::ConfigError;
use crate::metrics::{Kind, PoolMetrics, Target};

/// Settings of a [`KeyedPool`]; made by [`KeyedPool::builder`]. Defaults: one object per key, 50 in total, acquire timeout 30 s, create
/// timeout 10 s, validate timeout 5 s, skip validation within 500 ms, idle timeout 10 min,
/// maintenance every 30 s, no metrics.
///
/// ```
/// use mpm_pool::keyed::{KeyedManager, KeyedPool};
/// use std::num::NonZeroUsize;
///
/// struct Sockets;
///
/// impl KeyedManager<u32> for Sockets {
///     type Object = ();
///     type Error = std::io::Error;
///     async fn create(&self, _client: &u32) -> Result<(), std::io::Error> {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = mpm_metrics::Registry::default();
/// let pool = KeyedPool::builder(Sockets)
///     .max_total(NonZeroUsize::new(8).unwrap())
///     .metrics(&registry, "sockets")
///     .build()?;
/// drop(pool.get(7).await?);
/// let text = registry.render_prometheus();
/// assert!(text.contains("mpm_pool_keyed_created_total{name=\"sockets\"} 1\n"));
/// assert!(text.contains("mpm_pool_keyed_idle{name=\"sockets\"} 1\n"));
/// // A second keyed pool called "sockets" in the same registry is refused at build.
/// assert!(KeyedPool::builder(Sockets).metrics(&registry, "sockets").build().is_err());
/// # Ok(())
/// # }
/// ```
pub struct KeyedBuilder<K, M: KeyedManager<K>> {
    manager: M,
    config: KeyedConfig,
    metrics: Target,
    _key: std::marker::PhantomData<fn(K)>,
}

impl<K, M: KeyedManager<K>> std::fmt::Debug for KeyedBuilder<K, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<K, M> KeyedBuilder<K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    pub(super) fn new(manager: M) -> Self {
        KeyedBuilder {
            manager,
            config: KeyedConfig::default(),
            metrics: None,
            _key: std::marker::PhantomData,
        }
    }

    /// The most objects for one key.
    pub fn max_per_key(mut self, max: NonZeroUsize) -> Self {
        self.config.max_per_key = max.get();
        self
    }

    /// The most objects in total; at this cap another key's idle object is closed to make
    /// room.
    pub fn max_total(mut self, max: NonZeroUsize) -> Self {
        self.config.max_total = max.get();
        self
    }

    /// The longest a `get` takes in total, creation and validation included; `None` waits
    /// for ever.
    pub fn acquire_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.acquire_timeout = timeout;
        self
    }

    /// The longest one creation may take, within the acquire timeout.
    pub fn create_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.create_timeout = timeout;
        self
    }

    /// The longest one validation may take, within the acquire timeout.
    pub fn validate_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.validate_timeout = timeout;
        self
    }

    /// Idle objects used within this window are handed out unchecked.
    pub fn skip_validation_within(mut self, window: Duration) -> Self {
        self.config.skip_validation_within = window;
        self
    }

    /// The maintenance task closes objects idle this long (zero: every idle object at each
    /// pass) and drops keys left empty; `None` keeps idle objects until they are evicted at
    /// the total cap or [`KeyedPool::evict_idle`] is called.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// How often the maintenance task runs its pass (it ticks the coarse clock and sweeps
    /// waiters in between); `None` switches it off, and waits then use their own timers.
    pub fn maintenance_interval(mut self, interval: Option<Duration>) -> Self {
        self.config.maintenance_interval = interval;
        self
    }

    /// Records the pool's series into `registry`, each labelled `name="<name>"` (see the
    /// crate's table of metrics). The name is claimed at [`build`](Self::build).
    pub fn metrics(mut self, registry: &Registry, name: &str) -> Self {
        self.metrics = Some((registry.clone(), name.to_owned()));
        self
    }

    /// Builds the pool (and starts its maintenance task when inside a Tokio runtime).
    /// Fails if a duration that must be positive is zero or the metrics' name is taken.
    pub fn build(self) -> Result<KeyedPool<K, M>, ConfigError> {
        let c = &self.config;
        let positive = [
            ("acquire_timeout", c.acquire_timeout),
            ("create_timeout", c.create_timeout),
            ("validate_timeout", c.validate_timeout),
            ("maintenance_interval", c.maintenance_interval),
        ];
        for (name, d) in positive {
            if d == Some(Duration::ZERO) {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        let metrics = match &self.metrics {
            Some((registry, name)) => Some(PoolMetrics::register(registry, name, Kind::Keyed)?),
            None => None,
        };
        Ok(KeyedPool::with_parts(self.manager, self.config, metrics))
    }
}
