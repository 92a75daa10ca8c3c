//! The settings a [`KeyedBuilder`](super::KeyedBuilder) collects.

use std::time::Duration;

/// Settings of a [`KeyedPool`](super::KeyedPool), set through its [`KeyedBuilder`](super::KeyedBuilder).
#[derive(Debug, Clone)]
pub(crate) struct KeyedConfig {
    /// The most objects for one key (default 1, as a connection per client).
    pub(crate) max_per_key: usize,
    /// The most objects in total (default 50, as the guide's Socket.IO pool).
    pub(crate) max_total: usize,
    /// The longest a `get` takes in total, creation and validation included (default 30 s);
    /// `None` waits for ever.
    pub(crate) acquire_timeout: Option<Duration>,
    /// The longest one creation may take (default 10 s), within the acquire timeout.
    pub(crate) create_timeout: Option<Duration>,
    /// The longest one validation may take (default 5 s), within the acquire timeout.
    pub(crate) validate_timeout: Option<Duration>,
    /// Idle objects used within this window are handed out unchecked (default 500 ms).
    pub(crate) skip_validation_within: Duration,
    /// The background maintenance task closes objects idle this long or longer, and drops
    /// keys left without objects (default 10 min). `None` keeps idle objects until they are
    /// evicted at the total cap or [`KeyedPool::evict_idle`](super::KeyedPool::evict_idle) is called.
    pub(crate) idle_timeout: Option<Duration>,
    /// How often the background maintenance task runs its pass (default 30 s; between passes
    /// it ticks the pool's coarse clock and sweeps waiters near their deadlines, as the plain
    /// pool's task does; each period is
    /// shortened by a random 0-10%, as the plain pool's keepalive is, so that pools made
    /// together do not run their passes in step; zero is raised to 1 ms). `None` switches
    /// the task off. The task is started only when the pool is made inside a Tokio runtime
    /// (outside one, call [`KeyedPool::run_maintenance`](super::KeyedPool::run_maintenance) yourself). It holds the pool
    /// weakly and ends as soon as the pool is closed, or once the last pool handle and the
    /// last lent object are dropped.
    pub(crate) maintenance_interval: Option<Duration>,
}

impl Default for KeyedConfig {
    fn default() -> Self {
        KeyedConfig {
            max_per_key: 1,
            max_total: 50,
            acquire_timeout: Some(Duration::from_secs(30)),
            create_timeout: Some(Duration::from_secs(10)),
            validate_timeout: Some(Duration::from_secs(5)),
            skip_validation_within: Duration::from_millis(500),
            idle_timeout: Some(Duration::from_secs(600)),
            maintenance_interval: Some(Duration::from_secs(30)),
        }
    }
}
