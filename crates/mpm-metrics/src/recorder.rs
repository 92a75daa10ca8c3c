//! A `metrics::Recorder` backed by a [`Registry`], behind the `recorder` feature.

use std::sync::Arc;

use metrics::{
    Counter as MCounter, CounterFn, Gauge as MGauge, GaugeFn, Histogram as MHistogram, HistogramFn,
    Key, KeyName, Metadata, SharedString, Unit as MUnit,
};

use crate::{Counter, Gauge, Histogram, Registry, Unit, sanitize_label_name, sanitize_metric_name};

/// Lets code written against the `metrics` crate record into a [`Registry`].
///
/// Names and label names are passed through [`sanitize_metric_name`] and
/// [`sanitize_label_name`] (`http.requests` becomes `http_requests`). `metrics` histograms
/// record `f64` values; they are stored at nanounit precision (the value times 10^9, rounded)
/// and reported in the original unit, so durations recorded as seconds are reported as
/// seconds. Negative, NaN and infinite values are refused and counted. A key whose name is
/// registered with another kind goes to a no-op handle.
///
/// ```
/// use mpm_metrics::{MetricsRecorder, Registry};
///
/// let registry = Registry::default();
/// let recorder = MetricsRecorder::new(registry.clone());
/// metrics::with_local_recorder(&recorder, || {
///     metrics::counter!("http.requests", "method" => "GET").increment(3);
///     metrics::histogram!("http.latency").record(0.25);
/// });
/// let snap = registry.snapshot();
/// assert_eq!(snap.get("http_requests", &[("method", "GET")]).unwrap().as_f64(), 3.0);
/// let h = snap.get("http_latency", &[]).unwrap().as_histogram().unwrap();
/// assert!((h.p50 - 0.25).abs() < 0.0025);
/// ```
#[derive(Clone, Debug)]
pub struct MetricsRecorder {
    registry: Registry,
}

impl MetricsRecorder {
    /// A recorder writing into `registry`.
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    /// Installs this recorder as the process-wide `metrics` recorder.
    pub fn install(self) -> Result<(), metrics::SetRecorderError<Self>> {
        metrics::set_global_recorder(self)
    }

    fn parts(key: &Key) -> (String, Vec<(String, String)>) {
        let name = sanitize_metric_name(key.name());
        let labels = key
            .labels()
            .map(|l| (sanitize_label_name(l.key()), l.value().to_owned()))
            .collect();
        (name, labels)
    }
}

struct CounterCell(Counter);
impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        self.0.add(value);
    }
    fn absolute(&self, value: u64) {
        self.0.absolute(value);
    }
}

struct GaugeCell(Gauge);
impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.0.add(value);
    }
    fn decrement(&self, value: f64) {
        self.0.sub(value);
    }
    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

struct HistogramCell(Histogram);
impl HistogramFn for HistogramCell {
    fn record(&self, value: f64) {
        self.0.record_f64(value * 1e9);
    }
}

impl metrics::Recorder for MetricsRecorder {
    fn describe_counter(&self, key: KeyName, _unit: Option<MUnit>, description: SharedString) {
        let _ = self
            .registry
            .describe(&sanitize_metric_name(key.as_str()), &description);
    }

    fn describe_gauge(&self, key: KeyName, _unit: Option<MUnit>, description: SharedString) {
        let _ = self
            .registry
            .describe(&sanitize_metric_name(key.as_str()), &description);
    }

    fn describe_histogram(&self, key: KeyName, _unit: Option<MUnit>, description: SharedString) {
        let _ = self
            .registry
            .describe(&sanitize_metric_name(key.as_str()), &description);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> MCounter {
        let (name, labels) = Self::parts(key);
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        match self.registry.counter(&name, &labels) {
            Ok(c) => MCounter::from_arc(Arc::new(CounterCell(c))),
            Err(_) => MCounter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> MGauge {
        let (name, labels) = Self::parts(key);
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        match self.registry.gauge(&name, &labels) {
            Ok(g) => MGauge::from_arc(Arc::new(GaugeCell(g))),
            Err(_) => MGauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> MHistogram {
        let (name, labels) = Self::parts(key);
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // Unit::Seconds reports recorded nanounits divided by 10^9: the original unit.
        match self.registry.histogram(&name, &labels, Unit::Seconds) {
            Ok(h) => MHistogram::from_arc(Arc::new(HistogramCell(h))),
            Err(_) => MHistogram::noop(),
        }
    }
}
