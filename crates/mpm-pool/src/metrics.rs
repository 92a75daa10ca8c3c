//! The series the pools and the breaker record into an `mpm-metrics` registry, following the
//! [contract](mpm_metrics::contract): each is given `(registry, name)` by its builder's
//! `.metrics(..)`, claims the scope `pool`, `pool_keyed` or `pool_breaker` at `build()`, and
//! sets its gauges from a collector, so they are fresh at every scrape. Every metric is
//! listed in `metrics.md`, the table in the crate docs.

use std::sync::Arc;

use mpm_metrics::{Counter, Histogram, IntGauge, Registry, Scope, Unit};

use crate::error::Stage;
use crate::stats::{CloseReason, Status};

/// The instance given to a builder's `.metrics(&registry, name)`.
pub(crate) type Target = Option<(Registry, String)>;

/// The component names of the scopes.
pub(crate) const POOL: &str = "pool";
pub(crate) const KEYED: &str = "pool_keyed";
pub(crate) const BREAKER: &str = "pool_breaker";

fn gauge_value(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn closed_counters(
    scope: &Scope,
    reasons: &[CloseReason],
) -> Result<Vec<Counter>, mpm_metrics::Error> {
    reasons
        .iter()
        .map(|r| {
            scope.counter(
                "closed_total",
                "Objects closed, by why they left the pool.",
                &[("reason", r.as_str())],
            )
        })
        .collect()
}

fn timeout_counters(scope: &Scope, stages: &[Stage]) -> Result<Vec<Counter>, mpm_metrics::Error> {
    stages
        .iter()
        .map(|s| {
            scope.counter(
                "timeouts_total",
                "Steps that ran out of time, by stage (acquire: the caller's deadline).",
                &[("stage", s.as_str())],
            )
        })
        .collect()
}

/// The counters and histograms of a [`Pool`](crate::Pool); its gauges live in a collector.
pub(crate) struct PoolMetrics {
    /// Held for as long as the pool lives: it keeps the name claimed and the collector on.
    _scope: Scope,
    pub(crate) created: Counter,
    closed: Vec<Counter>,
    timeouts: Vec<Counter>,
    pub(crate) create_errors: Counter,
    pub(crate) leaks: Counter,
    pub(crate) acquire: Histogram,
    pub(crate) in_use_time: Histogram,
    pub(crate) create_time: Histogram,
}

/// The gauges a collector sets from a pool's [`Status`] at every scrape.
pub(crate) struct PoolGauges {
    size: IntGauge,
    idle: IntGauge,
    in_use: IntGauge,
    waiters: IntGauge,
    available: IntGauge,
    max_size: IntGauge,
}

impl PoolMetrics {
    /// Claims the pool's scope and registers its series.
    pub(crate) fn register(
        registry: &Registry,
        name: &str,
    ) -> Result<(Self, PoolGauges), mpm_metrics::Error> {
        let scope = registry.scope(POOL, name)?;
        let s = &scope;
        let gauges = PoolGauges {
            size: s.int_gauge(
                "size",
                "Objects in the pool (idle, lent, being created).",
                &[],
            )?,
            idle: s.int_gauge("idle", "Idle objects.", &[])?,
            in_use: s.int_gauge("in_use", "Objects lent out.", &[])?,
            waiters: s.int_gauge("waiters", "Callers waiting for an object.", &[])?,
            available: s.int_gauge(
                "available",
                "Gets that could start without waiting: idle objects plus room to create one (0 while callers wait).",
                &[],
            )?,
            max_size: s.int_gauge("max_size", "The pool's maximum size.", &[])?,
        };
        let metrics = PoolMetrics {
            created: s.counter("created_total", "Objects created.", &[])?,
            closed: closed_counters(s, &CloseReason::ALL)?,
            timeouts: timeout_counters(
                s,
                &[
                    Stage::Acquire,
                    Stage::Create,
                    Stage::Validate,
                    Stage::Recycle,
                ],
            )?,
            create_errors: s.counter("create_errors_total", "Failed creations.", &[])?,
            leaks: s.counter(
                "leaks_total",
                "Objects held past the leak-detection threshold.",
                &[],
            )?,
            acquire: s.histogram(
                "acquire_seconds",
                "Time a get waited for an object, a place or a creation (0 when an object was free).",
                Unit::Seconds,
                &[],
            )?,
            in_use_time: s.histogram(
                "in_use_seconds",
                "Time an object was held by its caller, every lease.",
                Unit::Seconds,
                &[],
            )?,
            create_time: s.histogram(
                "create_seconds",
                "Time a successful creation took.",
                Unit::Seconds,
                &[],
            )?,
            _scope: scope,
        };
        Ok((metrics, gauges))
    }

    /// Keeps the gauges fresh at every scrape from `status(target)`, for as long as `target`
    /// and this scope live.
    pub(crate) fn collect<T: Send + Sync + 'static>(
        &self,
        target: &Arc<T>,
        gauges: PoolGauges,
        status: impl Fn(&T) -> Status + Send + Sync + 'static,
    ) {
        self._scope
            .collector(target, move |t| gauges.set(&status(t)));
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        if let Some(i) = CloseReason::ALL.iter().position(|r| *r == reason) {
            self.closed[i].inc();
        }
    }

    pub(crate) fn timeout(&self, stage: Stage) {
        self.timeouts[stage as usize].inc();
    }
}

impl PoolGauges {
    fn set(&self, s: &Status) {
        self.size.set(gauge_value(s.size));
        self.idle.set(gauge_value(s.idle));
        self.in_use.set(gauge_value(s.in_use));
        self.waiters.set(gauge_value(s.waiting));
        self.available.set(gauge_value(s.available));
        self.max_size.set(gauge_value(s.max_size));
    }
}

/// The reasons a keyed pool closes objects for, in the order of its counters.
pub(crate) const KEYED_REASONS: [CloseReason; 9] = [
    CloseReason::Broken,
    CloseReason::Discarded,
    CloseReason::Invalid,
    CloseReason::Timeout,
    CloseReason::Idle,
    CloseReason::Evicted,
    CloseReason::Cancelled,
    CloseReason::Shutdown,
    CloseReason::Panicked,
];

/// The counters of a [`KeyedPool`](crate::keyed::KeyedPool); its gauges live in a collector.
pub(crate) struct KeyedMetrics {
    _scope: Scope,
    pub(crate) created: Counter,
    pub(crate) create_errors: Counter,
    closed: Vec<Counter>,
    timeouts: Vec<Counter>,
}

/// What the keyed pool's collector reads at every scrape.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KeyedFigures {
    pub(crate) keys: usize,
    pub(crate) size: usize,
    pub(crate) idle: usize,
    pub(crate) in_use: usize,
    pub(crate) waiters: usize,
    pub(crate) max_size: usize,
}

/// The gauges a collector sets from a keyed pool's figures.
pub(crate) struct KeyedGauges {
    keys: IntGauge,
    size: IntGauge,
    idle: IntGauge,
    in_use: IntGauge,
    waiters: IntGauge,
    max_size: IntGauge,
}

impl KeyedMetrics {
    pub(crate) fn register(
        registry: &Registry,
        name: &str,
    ) -> Result<(Self, KeyedGauges), mpm_metrics::Error> {
        let scope = registry.scope(KEYED, name)?;
        let s = &scope;
        let gauges = KeyedGauges {
            keys: s.int_gauge("keys", "Keys with at least one object.", &[])?,
            size: s.int_gauge("size", "Objects in the pool, all keys.", &[])?,
            idle: s.int_gauge("idle", "Idle objects, all keys.", &[])?,
            in_use: s.int_gauge("in_use", "Objects lent out or being created.", &[])?,
            waiters: s.int_gauge("waiters", "Callers waiting for an object.", &[])?,
            max_size: s.int_gauge("max_size", "The most objects in total.", &[])?,
        };
        let metrics = KeyedMetrics {
            created: s.counter("created_total", "Objects created.", &[])?,
            create_errors: s.counter("create_errors_total", "Failed creations.", &[])?,
            closed: closed_counters(s, &KEYED_REASONS)?,
            timeouts: timeout_counters(s, &[Stage::Acquire, Stage::Create, Stage::Validate])?,
            _scope: scope,
        };
        Ok((metrics, gauges))
    }

    pub(crate) fn collect<T: Send + Sync + 'static>(
        &self,
        target: &Arc<T>,
        gauges: KeyedGauges,
        figures: impl Fn(&T) -> KeyedFigures + Send + Sync + 'static,
    ) {
        self._scope.collector(target, move |t| {
            let f = figures(t);
            gauges.keys.set(gauge_value(f.keys));
            gauges.size.set(gauge_value(f.size));
            gauges.idle.set(gauge_value(f.idle));
            gauges.in_use.set(gauge_value(f.in_use));
            gauges.waiters.set(gauge_value(f.waiters));
            gauges.max_size.set(gauge_value(f.max_size));
        });
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        if let Some(i) = KEYED_REASONS.iter().position(|r| *r == reason) {
            self.closed[i].inc();
        }
    }

    pub(crate) fn timeout(&self, stage: Stage) {
        if let Some(c) = self.timeouts.get(stage as usize) {
            c.inc();
        }
    }
}

/// The series of a [`CircuitBreaker`](crate::CircuitBreaker): its state at scrape time, and
/// how often it opened and refused.
pub(crate) struct BreakerMetrics {
    scope: Scope,
    pub(crate) opened: Counter,
    pub(crate) refused: Counter,
    state: IntGauge,
}

impl BreakerMetrics {
    pub(crate) fn register(registry: &Registry, name: &str) -> Result<Self, mpm_metrics::Error> {
        let scope = registry.scope(BREAKER, name)?;
        let s = &scope;
        Ok(BreakerMetrics {
            opened: s.counter(
                "opened_total",
                "Times the breaker opened (a threshold of failures, or a failed probe).",
                &[],
            )?,
            refused: s.counter("refused_total", "Calls refused while open.", &[])?,
            state: s.int_gauge(
                "state",
                "The state at scrape time: 0 closed, 1 open, 2 half-open.",
                &[],
            )?,
            scope,
        })
    }

    /// Sets the state gauge from `state(target)` at every scrape.
    pub(crate) fn collect<T: Send + Sync + 'static>(
        &self,
        target: &Arc<T>,
        state: impl Fn(&T) -> i64 + Send + Sync + 'static,
    ) {
        let gauge = self.state.clone();
        self.scope.collector(target, move |t| gauge.set(state(t)));
    }
}
