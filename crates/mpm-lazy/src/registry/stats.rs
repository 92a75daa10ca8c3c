//! What the registry records per service: the [`ServiceStats`] users read and the bookkeeping
//! of each implementation attempt (stats and the init-time histogram).

use std::any::TypeId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mpm_metrics::Unit;
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
    pub(super) accesses: AtomicU64,
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
        accesses: entry.accesses.load(Ordering::Relaxed),
        attempts: stats.attempts,
        failures: stats.failures,
        last_error: stats.last_error.clone(),
        served_by: stats.served_by.clone(),
    }
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
        let labels = [
            ("service", &*entry.name),
            ("implementation", implementation),
            ("outcome", outcome),
        ];
        if let Ok(histogram) =
            metrics.histogram("mpm_lazy_service_init_seconds", &labels, Unit::Seconds)
        {
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
