//! The pool's statistics: a [`Status`] snapshot, and the series it records into
//! `mpm-metrics`.

use mpm_metrics::{Counter, Histogram, IntGauge, Registry, Unit};

use crate::breaker::BreakerState;
use crate::error::Stage;

/// Why an object left the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The manager's [`is_broken`](crate::Manager::is_broken) said so on release.
    Broken,
    /// The user called [`Object::discard`](crate::Object::discard).
    Discarded,
    /// Validation or recycling failed.
    Invalid,
    /// Validation or recycling timed out.
    Timeout,
    /// The object reached its maximum lifetime.
    Lifetime,
    /// The object was idle longer than the idle timeout.
    Idle,
    /// The object was taken out of the pool with [`Object::take`](crate::Object::take).
    Taken,
    /// A task was cancelled while the object was being checked.
    Cancelled,
    /// The pool shrank or closed.
    Shutdown,
    /// The object came back after leak detection had reported it (held past the threshold):
    /// whatever it was left in is suspect, so it is closed rather than lent again.
    Leaked,
    /// A method of the manager panicked on the object (or on its check).
    Panicked,
    /// A [`KeyedPool`](crate::keyed::KeyedPool) closed an idle object of one key to make room
    /// for another at its total cap.
    Evicted,
}

impl CloseReason {
    /// The reasons a [`Pool`](crate::Pool) records, in declaration order (`index` relies on
    /// it).
    const ALL: [CloseReason; 11] = [
        CloseReason::Broken,
        CloseReason::Discarded,
        CloseReason::Invalid,
        CloseReason::Timeout,
        CloseReason::Lifetime,
        CloseReason::Idle,
        CloseReason::Taken,
        CloseReason::Cancelled,
        CloseReason::Shutdown,
        CloseReason::Leaked,
        CloseReason::Panicked,
    ];

    /// The reason in lower case, as used in the `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Broken => "broken",
            CloseReason::Discarded => "discarded",
            CloseReason::Invalid => "invalid",
            CloseReason::Timeout => "timeout",
            CloseReason::Lifetime => "lifetime",
            CloseReason::Idle => "idle",
            CloseReason::Taken => "taken",
            CloseReason::Cancelled => "cancelled",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Leaked => "leaked",
            CloseReason::Panicked => "panicked",
            CloseReason::Evicted => "evicted",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A snapshot of a pool's state, from [`Pool::status`](crate::Pool::status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// Objects in the pool: idle, lent out and being created.
    pub size: usize,
    /// Idle objects.
    pub idle: usize,
    /// Objects lent out (including those being validated or recycled for a caller).
    pub in_use: usize,
    /// Objects being created.
    pub creating: usize,
    /// Tasks waiting for a free place.
    pub waiting: usize,
    /// The maximum size.
    pub max_size: usize,
    /// Permits free now: how many acquires could start without waiting (on an idle object
    /// or on room to create one). With nothing lent out or being made it equals `max_size`;
    /// a permit that never came back shows as a shortfall, without trying to acquire.
    pub available: usize,
    /// The circuit breaker's state, if the pool has one.
    pub breaker: Option<BreakerState>,
}

/// The series a pool records into a registry, each labelled `pool=<name>`:
///
/// - gauges `pool_size`, `pool_idle`, `pool_in_use`, `pool_waiting`, `pool_max_size`
///   (refreshed on each maintenance run and each [`Pool::status`](crate::Pool::status));
/// - counters `pool_created_total`, `pool_closed_total{reason}` (see [`CloseReason`]),
///   `pool_timeouts_total{stage}`, `pool_create_errors_total`, `pool_leaks_total`;
/// - histograms `pool_acquire_wait_seconds`, `pool_in_use_seconds`, `pool_create_seconds`.
///   One lease in 64 per object is recorded, with a weight of 64 (time in use, and waits
///   under a millisecond); every wait of a millisecond or more is recorded exactly. So the
///   statistics cost next to nothing and the tail of the wait histogram stays exact.
pub(crate) struct PoolMetrics {
    pub(crate) size: IntGauge,
    pub(crate) idle: IntGauge,
    pub(crate) in_use: IntGauge,
    pub(crate) waiting: IntGauge,
    pub(crate) max: IntGauge,
    pub(crate) created: Counter,
    closed: Vec<Counter>,
    timeouts: [Counter; 4],
    pub(crate) create_errors: Counter,
    pub(crate) leaks: Counter,
    pub(crate) acquire_wait: Histogram,
    pub(crate) in_use_time: Histogram,
    pub(crate) create_time: Histogram,
}

impl PoolMetrics {
    pub(crate) fn new(registry: &Registry, name: &str) -> Result<Self, mpm_metrics::Error> {
        let l = [("pool", name)];
        let closed = CloseReason::ALL
            .iter()
            .map(|r| {
                registry.counter(
                    "pool_closed_total",
                    &[("pool", name), ("reason", r.as_str())],
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let timeout = |s: Stage| {
            registry.counter(
                "pool_timeouts_total",
                &[("pool", name), ("stage", s.as_str())],
            )
        };
        Ok(PoolMetrics {
            size: registry.int_gauge("pool_size", &l)?,
            idle: registry.int_gauge("pool_idle", &l)?,
            in_use: registry.int_gauge("pool_in_use", &l)?,
            waiting: registry.int_gauge("pool_waiting", &l)?,
            max: registry.int_gauge("pool_max_size", &l)?,
            created: registry.counter("pool_created_total", &l)?,
            closed,
            timeouts: [
                timeout(Stage::Acquire)?,
                timeout(Stage::Create)?,
                timeout(Stage::Validate)?,
                timeout(Stage::Recycle)?,
            ],
            create_errors: registry.counter("pool_create_errors_total", &l)?,
            leaks: registry.counter("pool_leaks_total", &l)?,
            acquire_wait: registry.histogram("pool_acquire_wait_seconds", &l, Unit::Seconds)?,
            in_use_time: registry.histogram("pool_in_use_seconds", &l, Unit::Seconds)?,
            create_time: registry.histogram("pool_create_seconds", &l, Unit::Seconds)?,
        })
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        if let Some(c) = self.closed.get(reason.index()) {
            c.inc();
        }
    }

    pub(crate) fn timeout(&self, stage: Stage) {
        let i = match stage {
            Stage::Acquire => 0,
            Stage::Create => 1,
            Stage::Validate => 2,
            Stage::Recycle => 3,
        };
        self.timeouts[i].inc();
    }

    pub(crate) fn publish(&self, status: &Status) {
        self.size.set(status.size as i64);
        self.idle.set(status.idle as i64);
        self.in_use.set(status.in_use as i64);
        self.waiting.set(status.waiting as i64);
        self.max.set(status.max_size as i64);
    }
}
