//! What the registry records per service: the [`ServiceStats`] users read and the bookkeeping
//! of each implementation attempt (stats and the init-time histogram).

use std::any::TypeId;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mpm_metrics::{Counter, Histogram, IntGauge, Registry, Scope, Unit};
use parking_lot::Mutex;

use super::service::{Factory, Implementation};
use super::{AnyService, Inner};
use crate::error::BoxError;

/// What a registry knows about one service (claude-mpm's `LazyService` kept the same).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ServiceStats {
    /// The service's name.
    pub name: String,
    /// Whether it is built.
    pub initialized: bool,
    /// How long the implementation that built it took.
    pub init_time: Option<Duration>,
    /// Lookups of the service, through the registry and through resolvers.
    pub accesses: u64,
    /// Implementations run, failed or not.
    pub attempts: u64,
    /// Implementations that failed.
    pub failures: u64,
    /// The message of the latest failure, if any.
    pub last_error: Option<String>,
    /// The implementation that built the value.
    pub served_by: Option<String>,
}

#[derive(Default)]
pub(super) struct EntryStats {
    pub(super) init_time: Option<Duration>,
    pub(super) attempts: u64,
    pub(super) failures: u64,
    pub(super) last_error: Option<String>,
    pub(super) served_by: Option<String>,
}

/// One registered service: its chain, its value once built, and its stats.
pub(super) struct Entry {
    pub(super) name: Arc<str>,
    pub(super) type_id: TypeId,
    pub(super) type_name: &'static str,
    pub(super) implementations: Vec<Implementation>,
    pub(super) value: OnceLock<AnyService>,
    /// Sharded per thread (`mpm_metrics::Counter`): a hit counts with a plain load and
    /// store, not the atomic read-modify-write that was a third of a warm lookup's time.
    pub(super) accesses: Counter,
    pub(super) stats: Mutex<EntryStats>,
}

impl Entry {
    /// Whether no implementation can run without an async runtime.
    pub(super) fn needs_async(&self) -> bool {
        self.implementations
            .iter()
            .all(|i| matches!(i.factory, Factory::Async(_)))
    }
}

pub(super) fn entry_stats(entry: &Entry) -> ServiceStats {
    let stats = entry.stats.lock();
    ServiceStats {
        name: entry.name.to_string(),
        initialized: entry.value.get().is_some(),
        init_time: stats.init_time,
        accesses: entry.accesses.get(),
        attempts: stats.attempts,
        failures: stats.failures,
        last_error: stats.last_error.clone(),
        served_by: stats.served_by.clone(),
    }
}

/// The metrics of one lazy registry: its scope, and the init-time histogram of every
/// (service, implementation, outcome), registered at build so every series exists from the start.
pub(super) struct RegistryMetrics {
    scope: Scope,
    services: IntGauge,
    initialized: IntGauge,
}

const INIT_SECONDS: &str = "init_seconds";
const INIT_HELP: &str = "Time spent in each implementation attempt of a service, by outcome.";

impl RegistryMetrics {
    /// The component of every lazy registry's metrics: `mpm_lazy_registry_*`.
    const COMPONENT: &'static str = "lazy_registry";

    pub(super) fn new<'a>(
        registry: &Registry,
        name: &str,
        entries: impl Iterator<Item = &'a Entry>,
    ) -> Result<Self, mpm_metrics::Error> {
        let scope = registry.scope(Self::COMPONENT, name)?;
        for entry in entries {
            for implementation in &entry.implementations {
                for outcome in ["ok", "error"] {
                    init_histogram(&scope, entry, &implementation.name, outcome)?;
                }
            }
        }
        Ok(Self {
            services: scope.int_gauge("services", "Services registered.", &[])?,
            initialized: scope.int_gauge(
                "services_initialized",
                "Services built, at scrape time.",
                &[],
            )?,
            scope,
        })
    }

    /// Keeps the gauges fresh at every scrape, for as long as `inner` lives.
    pub(super) fn collect_from(&self, inner: &Arc<Inner>) {
        let (services, initialized) = (self.services.clone(), self.initialized.clone());
        self.scope.collector(inner, move |inner| {
            let built = inner
                .services
                .values()
                .filter(|entry| entry.value.get().is_some())
                .count();
            services.set(gauge_value(inner.services.len()));
            initialized.set(gauge_value(built));
        });
    }
}

fn gauge_value(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn init_histogram(
    scope: &Scope,
    entry: &Entry,
    implementation: &str,
    outcome: &str,
) -> Result<Histogram, mpm_metrics::Error> {
    scope.histogram(
        INIT_SECONDS,
        INIT_HELP,
        Unit::Seconds,
        &[
            ("service", &entry.name),
            ("implementation", implementation),
            ("outcome", outcome),
        ],
    )
}

pub(super) fn record(
    inner: &Inner,
    entry: &Entry,
    implementation: &str,
    started: Instant,
    ok: bool,
) {
    let elapsed = started.elapsed();
    if let Some(metrics) = &inner.metrics {
        let outcome = if ok { "ok" } else { "error" };
        // Registered at build, so this finds the histogram; a failure is impossible but
        // must not fail the lookup.
        if let Ok(histogram) = init_histogram(&metrics.scope, entry, implementation, outcome) {
            histogram.record_duration(elapsed);
        }
    }
    let mut stats = entry.stats.lock();
    stats.attempts += 1;
    if ok {
        stats.init_time = Some(elapsed);
        stats.served_by = Some(implementation.to_owned());
    } else {
        stats.failures += 1;
    }
}

pub(super) fn record_failure(entry: &Entry, error: &BoxError) {
    entry.stats.lock().last_error = Some(error.to_string());
}

pub(super) fn finish(entry: &Entry, value: AnyService) -> AnyService {
    // Only the claim holder sets the value, so this set cannot lose a race.
    let _ = entry.value.set(Arc::clone(&value));
    value
}
