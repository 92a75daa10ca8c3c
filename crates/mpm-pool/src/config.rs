//! A [`Pool`](crate::Pool)'s settings, as its [`Builder`](crate::Builder) collects them.

use std::sync::Arc;
use std::time::Duration;

use mpm_metrics::Registry;

use crate::breaker::CircuitBreaker;

/// The order in which idle objects are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueMode {
    /// The object idle longest goes first: all objects stay warm (the default).
    #[default]
    Fifo,
    /// The object returned last goes first: a burst's extra objects go idle and expire.
    Lifo,
}

/// A report of an object held longer than the leak-detection threshold.
#[derive(Debug, Clone)]
pub struct LeakReport {
    /// Where the object was acquired (the caller of [`Pool::get`](crate::Pool::get)).
    pub acquired_at: &'static std::panic::Location<'static>,
    /// How long it had been held when reported.
    pub held_for: Duration,
    /// The object's id within its pool.
    pub object_id: u64,
}

pub(crate) type LeakHook = Arc<dyn Fn(&LeakReport) + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) max_size: usize,
    pub(crate) min_idle: usize,
    pub(crate) acquire_timeout: Option<Duration>,
    pub(crate) create_timeout: Option<Duration>,
    pub(crate) validate_timeout: Option<Duration>,
    pub(crate) recycle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) skip_validation_within: Duration,
    pub(crate) queue_mode: QueueMode,
    pub(crate) leak_threshold: Option<Duration>,
    pub(crate) on_leak: Option<LeakHook>,
    pub(crate) maintenance: Option<Duration>,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) registry: Option<(Registry, String)>,
    pub(crate) breaker: Option<CircuitBreaker>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_size: 10,
            min_idle: 0,
            acquire_timeout: Some(Duration::from_secs(30)),
            create_timeout: Some(Duration::from_secs(10)),
            validate_timeout: Some(Duration::from_secs(5)),
            recycle_timeout: Some(Duration::from_secs(5)),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            idle_timeout: Some(Duration::from_secs(10 * 60)),
            keepalive: None,
            skip_validation_within: Duration::from_millis(500),
            queue_mode: QueueMode::Fifo,
            leak_threshold: None,
            on_leak: None,
            maintenance: Some(Duration::from_secs(30)),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            registry: None,
            breaker: None,
        }
    }
}

/// The largest supported `max_size`.
pub(crate) const MAX_SIZE_LIMIT: usize = 1 << 24;
