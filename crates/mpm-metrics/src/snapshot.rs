//! A consistent read of every metric in a registry.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::histogram::HistogramSnapshot;
use crate::{Kind, Unit};

/// Every metric of a [`Registry`](crate::Registry) as read by
/// [`Registry::snapshot`](crate::Registry::snapshot). Serializes to JSON with
/// [`Snapshot::to_json`].
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// Seconds since the registry was created (the denominator of rates).
    pub uptime_seconds: f64,
    /// The metrics, sorted by name.
    pub metrics: Vec<MetricSnapshot>,
}

/// One metric and all its series.
#[derive(Clone, Debug, Serialize)]
pub struct MetricSnapshot {
    /// The metric name.
    pub name: String,
    /// The HELP text, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// What the metric is.
    pub kind: Kind,
    /// The unit histogram figures are reported in.
    pub unit: Unit,
    /// How many get-or-create calls were sent to the overflow series by the cardinality cap.
    #[serde(skip_serializing_if = "is_zero")]
    pub overflowed: u64,
    /// The series, sorted by label set.
    pub series: Vec<SeriesSnapshot>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One series: a label set and its value.
#[derive(Clone, Debug, Serialize)]
pub struct SeriesSnapshot {
    /// The labels, sorted by name.
    #[serde(serialize_with = "labels_as_map")]
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: Value,
}

fn labels_as_map<S: Serializer>(labels: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(labels.len()))?;
    for (k, v) in labels {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

/// The value of one series.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A counter's count.
    Counter(u64),
    /// A floating-point gauge's value.
    Gauge(f64),
    /// An integer gauge's value.
    IntGauge(i64),
    /// A histogram's statistics, in the metric's [`Unit`].
    Histogram(HistogramSnapshot),
}

impl Value {
    /// The value as one number: a counter's count, a gauge's value, a histogram's count.
    pub fn as_f64(&self) -> f64 {
        match self {
            Value::Counter(c) => *c as f64,
            Value::Gauge(g) => *g,
            Value::IntGauge(g) => *g as f64,
            Value::Histogram(h) => h.count as f64,
        }
    }

    /// The histogram statistics, when this is a histogram.
    pub fn as_histogram(&self) -> Option<&HistogramSnapshot> {
        match self {
            Value::Histogram(h) => Some(h),
            _ => None,
        }
    }
}

impl Snapshot {
    /// The metric called `name`.
    pub fn metric(&self, name: &str) -> Option<&MetricSnapshot> {
        self.metrics
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.metrics[i])
    }

    /// The value of the series `name` with exactly these labels (in any order).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<&Value> {
        let mut wanted: Vec<(&str, &str)> = labels.to_vec();
        wanted.sort_unstable();
        self.metric(name)?
            .series
            .iter()
            .find(|s| {
                s.labels.len() == wanted.len()
                    && s.labels
                        .iter()
                        .zip(&wanted)
                        .all(|((k, v), (wk, wv))| k == wk && v == wv)
            })
            .map(|s| &s.value)
    }

    /// The snapshot as a JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a snapshot always serializes")
    }
}
