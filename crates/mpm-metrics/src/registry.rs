//! The registry: metrics by name and labels, handed out as cheap handles.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use crate::collector::Collectors;
use crate::counter::Arena;
use crate::lines::Lines;
use crate::name::{label_key, validate_metric_name};
use crate::scope::Claims;
use crate::snapshot::{MetricSnapshot, SeriesSnapshot, Snapshot, Value};
use crate::timer::Timer;
use crate::{Buckets, Counter, Error, Gauge, Histogram, IntGauge};

/// The label set that stands for every series beyond a metric's cap.
pub const OVERFLOW_LABELS: &str = "mpm_overflow=\"true\"";

/// The default cap on label sets per metric; see [`RegistryBuilder::max_series_per_metric`].
pub const DEFAULT_MAX_SERIES: usize = 1000;

/// What a metric is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Kind {
    /// A monotonic [`Counter`].
    Counter,
    /// A floating-point [`Gauge`].
    Gauge,
    /// An integer [`IntGauge`].
    IntGauge,
    /// A [`Histogram`].
    Histogram,
}

impl Kind {
    /// The name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::IntGauge => "integer gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// The unit a histogram reports in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Unit {
    /// Plain numbers, reported as recorded.
    #[default]
    None,
    /// Durations: recorded in nanoseconds (for example by [`Histogram::record_duration`] or a
    /// [`Timer`]), reported in seconds everywhere (snapshots, JSON, Prometheus), as Prometheus
    /// recommends.
    Seconds,
    /// Sizes in bytes, reported as recorded.
    Bytes,
}

impl Unit {
    /// What recorded values are divided by to give reported ones (10^9 for seconds).
    pub fn divisor(self) -> f64 {
        match self {
            Unit::Seconds => 1e9,
            Unit::None | Unit::Bytes => 1.0,
        }
    }
}

#[derive(Clone)]
pub(crate) enum Handle {
    Counter(Counter),
    Gauge(Gauge),
    IntGauge(IntGauge),
    Histogram(Histogram),
}

impl Handle {
    fn kind(&self) -> Kind {
        match self {
            Handle::Counter(_) => Kind::Counter,
            Handle::Gauge(_) => Kind::Gauge,
            Handle::IntGauge(_) => Kind::IntGauge,
            Handle::Histogram(_) => Kind::Histogram,
        }
    }
}

pub(crate) struct Series {
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) handle: Handle,
}

pub(crate) struct Family {
    pub(crate) kind: Kind,
    pub(crate) unit: Unit,
    /// Keyed by the rendered, escaped label set (`a="x",b="y"`), which is also what the
    /// exposition prints.
    pub(crate) series: BTreeMap<String, Series>,
    /// How many get-or-create calls were sent to the overflow series.
    pub(crate) overflowed: u64,
    /// The series in render order, with their line starts, made by the first render after a
    /// series was added or removed; see [`Lines`].
    pub(crate) lines: Lines,
}

impl Family {
    /// A family without series.
    fn new(kind: Kind, unit: Unit) -> Self {
        Family {
            kind,
            unit,
            series: BTreeMap::new(),
            overflowed: 0,
            lines: Lines::default(),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) families: RwLock<BTreeMap<String, Family>>,
    pub(crate) help: RwLock<HashMap<String, String>>,
    max_series: usize,
    started: quanta::Instant,
    timers: Mutex<HashMap<u64, (Histogram, quanta::Instant)>>,
    /// The source of timer and collector ids.
    pub(crate) next_timer: AtomicU64,
    /// Bucket layouts given by name; a histogram without one uses its unit's default.
    pub(crate) buckets: RwLock<HashMap<String, Buckets>>,
    pub(crate) collectors: Mutex<Collectors>,
    pub(crate) claims: Mutex<Claims>,
    /// The cells of every counter made here, summed in one sweep by a render.
    pub(crate) counters: Arc<Arena>,
}

/// Builds a [`Registry`] with non-default settings.
///
/// ```
/// use std::num::NonZeroUsize;
/// use mpm_metrics::Registry;
///
/// let registry = Registry::builder()
///     .max_series_per_metric(NonZeroUsize::new(2).unwrap())
///     .build();
/// for user in ["a", "b", "c", "d"] {
///     registry.counter("logins_total", &[("user", user)]).unwrap().inc();
/// }
/// // Two series of their own, then one overflow series for the rest.
/// let snap = registry.snapshot();
/// assert_eq!(snap.metric("logins_total").unwrap().series.len(), 3);
/// ```
#[derive(Debug, Clone)]
pub struct RegistryBuilder {
    max_series: usize,
}

impl Default for RegistryBuilder {
    fn default() -> Self {
        Self {
            max_series: DEFAULT_MAX_SERIES,
        }
    }
}

impl RegistryBuilder {
    /// The cap on distinct label sets per metric (default [`DEFAULT_MAX_SERIES`]). Beyond it,
    /// get-or-create returns the metric's overflow series, labelled [`OVERFLOW_LABELS`], so a
    /// label-cardinality explosion costs one series, not unbounded memory.
    pub fn max_series_per_metric(mut self, max: NonZeroUsize) -> Self {
        self.max_series = max.get();
        self
    }

    /// The registry.
    pub fn build(self) -> Registry {
        Registry {
            inner: Arc::new(Inner {
                families: RwLock::new(BTreeMap::new()),
                help: RwLock::new(HashMap::new()),
                max_series: self.max_series,
                started: quanta::Instant::now(),
                timers: Mutex::new(HashMap::new()),
                next_timer: AtomicU64::new(1),
                buckets: RwLock::new(HashMap::new()),
                collectors: Mutex::new(Collectors::default()),
                claims: Mutex::new(Claims::default()),
                counters: Arc::default(),
            }),
        }
    }
}

/// The id of a timer started by [`Registry::start_timer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(u64);

impl TimerId {
    /// The number behind the id.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Metrics by name and labels.
///
/// A `Registry` is a cheap, cloneable handle (an `Arc`); clones share every metric.
/// Get-or-create methods such as [`Registry::counter`] take a lock and look the series up;
/// the handle they return records with one atomic operation and touches no map and no lock,
/// so resolve handles once and keep them.
///
/// ```
/// use mpm_metrics::{Registry, Unit};
///
/// let registry = Registry::default();
/// let hits = registry.counter("cache_hits_total", &[("tier", "l1")])?;
/// hits.inc();
/// let latency = registry.histogram("load_duration_seconds", &[], Unit::Seconds)?;
/// latency.record_duration(std::time::Duration::from_micros(250));
///
/// let text = registry.render_prometheus();
/// assert!(text.contains("cache_hits_total{tier=\"l1\"} 1\n"));
/// # Ok::<(), mpm_metrics::Error>(())
/// ```
#[derive(Clone)]
pub struct Registry {
    pub(crate) inner: Arc<Inner>,
}

impl Default for Registry {
    fn default() -> Self {
        RegistryBuilder::default().build()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("metrics", &self.inner.families.read().len())
            .field("max_series_per_metric", &self.inner.max_series)
            .finish()
    }
}

impl Registry {
    /// A builder for non-default settings.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// The cap on label sets per metric.
    pub fn max_series_per_metric(&self) -> usize {
        self.inner.max_series
    }

    /// Gets or creates the counter `name` with these labels.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Result<Counter, Error> {
        match self.get_or_create(name, labels, Kind::Counter, Unit::None)? {
            Handle::Counter(c) => Ok(c),
            _ => unreachable!("get_or_create checks the kind"),
        }
    }

    /// Gets or creates the floating-point gauge `name` with these labels.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Result<Gauge, Error> {
        match self.get_or_create(name, labels, Kind::Gauge, Unit::None)? {
            Handle::Gauge(g) => Ok(g),
            _ => unreachable!("get_or_create checks the kind"),
        }
    }

    /// Gets or creates the integer gauge `name` with these labels.
    pub fn int_gauge(&self, name: &str, labels: &[(&str, &str)]) -> Result<IntGauge, Error> {
        match self.get_or_create(name, labels, Kind::IntGauge, Unit::None)? {
            Handle::IntGauge(g) => Ok(g),
            _ => unreachable!("get_or_create checks the kind"),
        }
    }

    /// Gets or creates the histogram `name` with these labels. The unit is fixed by the first
    /// call for a name; see [`Unit`].
    pub fn histogram(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        unit: Unit,
    ) -> Result<Histogram, Error> {
        match self.get_or_create(name, labels, Kind::Histogram, unit)? {
            Handle::Histogram(h) => Ok(h),
            _ => unreachable!("get_or_create checks the kind"),
        }
    }

    /// A scoped [`Timer`] for `operation`: its guards record their duration into the
    /// histogram `{operation}_duration_seconds` and count failures and panics in
    /// `{operation}_errors_total`.
    pub fn timer(&self, operation: &str, labels: &[(&str, &str)]) -> Result<Timer, Error> {
        Timer::new(self, operation, labels, false)
    }

    /// A [`Timer`] that also records the bytes allocated while each guard lives into
    /// `{operation}_allocated_bytes` and the net change into the gauge
    /// `{operation}_memory_delta_bytes`, from the [`CountingAllocator`](crate::CountingAllocator)
    /// when it is the global allocator (otherwise those stay empty).
    pub fn memory_timer(&self, operation: &str, labels: &[(&str, &str)]) -> Result<Timer, Error> {
        Timer::new(self, operation, labels, true)
    }

    /// Sets the HELP text of a metric, shown in the exposition. It may be given before or
    /// after the metric is created.
    pub fn describe(&self, name: &str, help: &str) -> Result<(), Error> {
        validate_metric_name(name)?;
        self.inner
            .help
            .write()
            .insert(name.to_owned(), help.to_owned());
        Ok(())
    }

    /// Sets the bucket bounds the histogram `name` is exposed with (see [`Buckets`]); it may
    /// be given before or after the histogram is created. Without it a histogram uses
    /// [`Buckets::default_for`] its unit.
    pub fn set_buckets(&self, name: &str, buckets: Buckets) -> Result<(), Error> {
        validate_metric_name(name)?;
        self.inner.buckets.write().insert(name.to_owned(), buckets);
        Ok(())
    }

    /// The bucket bounds the histogram `name` is exposed with, when it exists.
    pub fn buckets(&self, name: &str) -> Option<Buckets> {
        let unit = self.inner.families.read().get(name)?.unit;
        Some(
            self.inner
                .buckets
                .read()
                .get(name)
                .cloned()
                .unwrap_or_else(|| Buckets::default_for(unit)),
        )
    }

    /// Removes one series. Handles to it keep working but are no longer reported. Returns
    /// whether the series existed.
    pub fn remove(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        let Ok(key) = label_key(name, labels) else {
            return false;
        };
        let mut families = self.inner.families.write();
        let Some(family) = families.get_mut(name) else {
            return false;
        };
        if family.series.remove(&key).is_none() {
            return false;
        }
        family.lines.invalidate();
        if family.series.is_empty() {
            families.remove(name);
        }
        true
    }

    /// The guide's `record_metric(name, value, tags)`: sets the gauge `name` with these labels.
    /// NaN and infinity are refused with [`Error::NonFinite`] (and counted on the gauge).
    pub fn record_metric(
        &self,
        name: &str,
        value: f64,
        labels: &[(&str, &str)],
    ) -> Result<(), Error> {
        let gauge = self.gauge(name, labels)?;
        if gauge.set(value) {
            Ok(())
        } else {
            Err(Error::NonFinite {
                name: name.to_owned(),
                value,
            })
        }
    }

    /// The guide's `increment_counter(name, tags)`: adds one to the counter `name`.
    pub fn increment_counter(&self, name: &str, labels: &[(&str, &str)]) -> Result<(), Error> {
        self.counter(name, labels)?.inc();
        Ok(())
    }

    /// Starts timing `operation` for callers that cannot hold a guard; pair it with
    /// [`Registry::stop_timer`]. The duration goes into `{operation}_duration_seconds`.
    pub fn start_timer(&self, operation: &str) -> Result<TimerId, Error> {
        let histogram =
            self.histogram(&format!("{operation}_duration_seconds"), &[], Unit::Seconds)?;
        let id = self.inner.next_timer.fetch_add(1, Ordering::Relaxed);
        self.inner
            .timers
            .lock()
            .insert(id, (histogram, quanta::Instant::now()));
        Ok(TimerId(id))
    }

    /// Stops a timer, records its duration and returns it.
    pub fn stop_timer(&self, id: TimerId) -> Result<Duration, Error> {
        let (histogram, start) = self
            .inner
            .timers
            .lock()
            .remove(&id.0)
            .ok_or(Error::UnknownTimer { id: id.0 })?;
        let elapsed = quanta::Instant::now().saturating_duration_since(start);
        histogram.record_duration(elapsed);
        Ok(elapsed)
    }

    /// How many timers started with [`Registry::start_timer`] are still running.
    pub fn running_timers(&self) -> usize {
        self.inner.timers.lock().len()
    }

    /// Runs the collectors (see [`Registry::add_collector`]), then reads every metric once.
    /// The set of series cannot change while it is read (the registry's read lock is held);
    /// each value is read atomically, while recording goes on.
    pub fn snapshot(&self) -> Snapshot {
        self.run_collectors();
        let uptime_seconds = self.inner.started.elapsed().as_secs_f64();
        let help = self.inner.help.read();
        let families = self.inner.families.read();
        let metrics = families
            .iter()
            .map(|(name, family)| MetricSnapshot {
                name: name.clone(),
                help: help.get(name).cloned(),
                kind: family.kind,
                unit: family.unit,
                overflowed: family.overflowed,
                series: family
                    .series
                    .values()
                    .map(|s| SeriesSnapshot {
                        labels: s.labels.clone(),
                        value: match &s.handle {
                            Handle::Counter(c) => Value::Counter(c.get()),
                            Handle::Gauge(g) => Value::Gauge(g.get()),
                            Handle::IntGauge(g) => Value::IntGauge(g.get()),
                            Handle::Histogram(h) => {
                                Value::Histogram(h.snapshot().scaled(family.unit.divisor()))
                            }
                        },
                    })
                    .collect(),
            })
            .collect();
        Snapshot {
            uptime_seconds,
            metrics,
        }
    }

    fn get_or_create(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        kind: Kind,
        unit: Unit,
    ) -> Result<Handle, Error> {
        validate_metric_name(name)?;
        let key = label_key(name, labels)?;
        let mismatch = |existing: Kind| Error::KindMismatch {
            name: name.to_owned(),
            existing: existing.as_str(),
            requested: kind.as_str(),
        };
        {
            let families = self.inner.families.read();
            if let Some(family) = families.get(name) {
                if family.kind != kind {
                    return Err(mismatch(family.kind));
                }
                if let Some(series) = family.series.get(&key) {
                    return Ok(series.handle.clone());
                }
            }
        }
        let mut families = self.inner.families.write();
        let family = families
            .entry(name.to_owned())
            .or_insert_with(|| Family::new(kind, unit));
        if family.kind != kind {
            return Err(mismatch(family.kind));
        }
        if let Some(series) = family.series.get(&key) {
            return Ok(series.handle.clone());
        }
        let own_series =
            family.series.len() - usize::from(family.series.contains_key(OVERFLOW_LABELS));
        let (key, labels) = if own_series >= self.inner.max_series {
            family.overflowed += 1;
            (
                OVERFLOW_LABELS.to_owned(),
                vec![("mpm_overflow".to_owned(), "true".to_owned())],
            )
        } else {
            let mut owned: Vec<(String, String)> = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            owned.sort();
            (key, owned)
        };
        if let Some(series) = family.series.get(&key) {
            // The overflow series, made by an earlier call.
            return Ok(series.handle.clone());
        }
        family.lines.invalidate();
        let series = family.series.entry(key).or_insert_with(|| Series {
            labels,
            handle: match kind {
                Kind::Counter => Handle::Counter(Counter::in_arena(&self.inner.counters)),
                Kind::Gauge => Handle::Gauge(Gauge::new()),
                Kind::IntGauge => Handle::IntGauge(IntGauge::new()),
                Kind::Histogram => Handle::Histogram(Histogram::new()),
            },
        });
        debug_assert_eq!(series.handle.kind(), kind);
        Ok(series.handle.clone())
    }
}
