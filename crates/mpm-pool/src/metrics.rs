//! The series the pools and the breaker record into an `mpm-metrics` registry, following the
//! [contract](mpm_metrics::contract): each is given `(registry, name)` by its builder's
//! `.metrics(..)`, claims the scope `pool`, `pool_keyed` or `pool_breaker` at `build()`, and
//! sets its gauges from a collector, so they are fresh at every scrape. Every metric is
//! listed in `metrics.md`, the table in the crate docs.

use std::sync::Arc;

use mpm_metrics::{Counter, Histogram, IntGauge, Registry, Scope, Unit};

use crate::clock::{Clock, Since};
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

/// Which pool a [`PoolMetrics`] serves: the series are the same, under the scope of each
/// ([`POOL`] or [`KEYED`]), except that the plain pool alone detects leaks and counts the
/// gets that could start at once, and the keyed pool adds its number of keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A [`Pool`](crate::Pool).
    Plain,
    /// A [`KeyedPool`](crate::keyed::KeyedPool).
    Keyed,
}

impl Kind {
    fn component(self) -> &'static str {
        match self {
            Kind::Plain => POOL,
            Kind::Keyed => KEYED,
        }
    }

    /// The reasons this pool closes objects for, in the order of its counters.
    fn reasons(self) -> &'static [CloseReason] {
        match self {
            Kind::Plain => &CloseReason::ALL,
            Kind::Keyed => &KEYED_REASONS,
        }
    }

    /// The stages this pool times, in the order of [`Stage`] (the keyed pool recycles nothing).
    fn stages(self) -> &'static [Stage] {
        match self {
            Kind::Plain => &[
                Stage::Acquire,
                Stage::Create,
                Stage::Validate,
                Stage::Recycle,
            ],
            Kind::Keyed => &[Stage::Acquire, Stage::Create, Stage::Validate],
        }
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

/// The counters and histograms of either pool ([`Kind`]); its gauges live in a collector.
pub(crate) struct PoolMetrics {
    /// Held for as long as the pool lives: it keeps the name claimed and the collector on.
    _scope: Scope,
    kind: Kind,
    pub(crate) created: Counter,
    closed: Vec<Counter>,
    timeouts: Vec<Counter>,
    pub(crate) create_errors: Counter,
    /// The plain pool's: the keyed pool detects no leaks.
    pub(crate) leaks: Option<Counter>,
    pub(crate) acquire: Histogram,
    pub(crate) in_use_time: Histogram,
    pub(crate) create_time: Histogram,
}

/// What a pool's collector reads at every scrape.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Figures {
    pub(crate) size: usize,
    pub(crate) idle: usize,
    pub(crate) in_use: usize,
    pub(crate) waiters: usize,
    pub(crate) max_size: usize,
    /// The plain pool's gets that could start at once.
    pub(crate) available: Option<usize>,
    /// The keyed pool's keys.
    pub(crate) keys: Option<usize>,
}

impl From<&Status> for Figures {
    fn from(s: &Status) -> Self {
        Figures {
            size: s.size,
            idle: s.idle,
            in_use: s.in_use,
            waiters: s.waiting,
            max_size: s.max_size,
            available: Some(s.available),
            keys: None,
        }
    }
}

/// The gauges a collector sets from a pool's [`Figures`] at every scrape.
pub(crate) struct Gauges {
    size: IntGauge,
    idle: IntGauge,
    in_use: IntGauge,
    waiters: IntGauge,
    max_size: IntGauge,
    available: Option<IntGauge>,
    keys: Option<IntGauge>,
}

impl PoolMetrics {
    /// Claims the pool's scope and registers its series.
    pub(crate) fn register(
        registry: &Registry,
        name: &str,
        kind: Kind,
    ) -> Result<(Self, Gauges), mpm_metrics::Error> {
        let scope = registry.scope(kind.component(), name)?;
        let s = &scope;
        let plain = kind == Kind::Plain;
        let gauges = Gauges {
            size: s.int_gauge(
                "size",
                "Objects in the pool (idle, lent, being created).",
                &[],
            )?,
            idle: s.int_gauge("idle", "Idle objects.", &[])?,
            in_use: s.int_gauge("in_use", "Objects lent out.", &[])?,
            waiters: s.int_gauge("waiters", "Callers waiting for an object.", &[])?,
            max_size: s.int_gauge("max_size", "The pool's maximum size.", &[])?,
            available: if plain {
                Some(s.int_gauge(
                    "available",
                    "Gets that could start without waiting: idle objects plus room to create one (0 while callers wait).",
                    &[],
                )?)
            } else {
                None
            },
            keys: if plain {
                None
            } else {
                Some(s.int_gauge("keys", "Keys with at least one object.", &[])?)
            },
        };
        let metrics = PoolMetrics {
            kind,
            created: s.counter("created_total", "Objects created.", &[])?,
            closed: closed_counters(s, kind.reasons())?,
            timeouts: timeout_counters(s, kind.stages())?,
            create_errors: s.counter("create_errors_total", "Failed creations.", &[])?,
            leaks: if plain {
                Some(s.counter(
                    "leaks_total",
                    "Objects held past the leak-detection threshold.",
                    &[],
                )?)
            } else {
                None
            },
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

    /// Keeps the gauges fresh at every scrape from `figures(target)`, for as long as
    /// `target` and this scope live.
    pub(crate) fn collect<T: Send + Sync + 'static>(
        &self,
        target: &Arc<T>,
        gauges: Gauges,
        figures: impl Fn(&T) -> Figures + Send + Sync + 'static,
    ) {
        self._scope
            .collector(target, move |t| gauges.set(&figures(t)));
    }

    /// A lease begins: records how long its get waited (`waited`, the wait's start; 0 if it did
    /// not wait, without reading a clock) and returns the lease's start for
    /// [`PoolMetrics::returned`]. One raw TSC reading serves both, so that every lease is
    /// recorded, exactly, for one reading here and one on its return.
    #[inline]
    pub(crate) fn lent(&self, clock: &Clock, waited: Option<Since>) -> u64 {
        let now = clock.raw();
        self.acquire
            .record(waited.map_or(0, |since| since.nanos_to(clock, now)));
        now
    }

    /// A lease that began at `since` (from [`PoolMetrics::lent`]) ends: records its time in use.
    #[inline]
    pub(crate) fn returned(&self, clock: &Clock, since: u64) {
        self.in_use_time.record(clock.nanos(since, clock.raw()));
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        if let Some(i) = self.kind.reasons().iter().position(|r| *r == reason) {
            self.closed[i].inc();
        }
    }

    pub(crate) fn timeout(&self, stage: Stage) {
        if let Some(c) = self.timeouts.get(stage as usize) {
            c.inc();
        }
    }
}

impl Gauges {
    fn set(&self, f: &Figures) {
        self.size.set(gauge_value(f.size));
        self.idle.set(gauge_value(f.idle));
        self.in_use.set(gauge_value(f.in_use));
        self.waiters.set(gauge_value(f.waiters));
        self.max_size.set(gauge_value(f.max_size));
        if let (Some(g), Some(v)) = (&self.available, f.available) {
            g.set(gauge_value(v));
        }
        if let (Some(g), Some(v)) = (&self.keys, f.keys) {
            g.set(gauge_value(v));
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
