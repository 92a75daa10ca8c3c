//! Performance budgets: limits on a metric's statistics, checked against a snapshot.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[cfg(feature = "toml")]
use crate::Error;
use crate::{Snapshot, Value};

/// Which figure of a metric a budget limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Statistic {
    /// A histogram's median.
    P50,
    /// A histogram's 90th percentile.
    P90,
    /// A histogram's 99th percentile.
    P99,
    /// A histogram's 99.9th percentile.
    P999,
    /// A histogram's maximum.
    Max,
    /// A histogram's minimum.
    Min,
    /// A histogram's mean.
    Mean,
    /// A counter's value or a histogram's count.
    Count,
    /// [`Statistic::Count`] per second of the registry's uptime.
    Rate,
    /// A gauge's value (or a counter's).
    Value,
}

impl Statistic {
    fn of(self, value: &Value, uptime_seconds: f64) -> Option<f64> {
        let h = value.as_histogram();
        Some(match self {
            Statistic::P50 => h?.p50,
            Statistic::P90 => h?.p90,
            Statistic::P99 => h?.p99,
            Statistic::P999 => h?.p999,
            Statistic::Max => h?.max,
            Statistic::Min => h?.min,
            Statistic::Mean => h?.mean,
            Statistic::Count => match value {
                Value::Counter(_) | Value::Histogram(_) => value.as_f64(),
                _ => return None,
            },
            Statistic::Rate => match value {
                Value::Counter(_) | Value::Histogram(_) if uptime_seconds > 0.0 => {
                    value.as_f64() / uptime_seconds
                }
                _ => return None,
            },
            Statistic::Value => match value {
                Value::Histogram(_) => return None,
                _ => value.as_f64(),
            },
        })
    }
}

/// Whether the actual figure must stay at or below the limit, or at or above it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// `actual <= limit` passes (latencies, sizes).
    #[default]
    AtMost,
    /// `actual >= limit` passes (throughput, hit rates).
    AtLeast,
}

/// A limit on one statistic of one series.
///
/// Budgets deserialize from TOML or JSON, so a checked-in file can hold them:
///
/// ```
/// use mpm_metrics::{Budget, Registry, Unit, check_budgets};
/// use std::time::Duration;
///
/// let registry = Registry::default();
/// let h = registry.histogram("get_duration_seconds", &[], Unit::Seconds)?;
/// for _ in 0..100 {
///     h.record_duration(Duration::from_micros(40));
/// }
/// let budgets = [
///     Budget::duration_at_most("get_duration_seconds", mpm_metrics::Statistic::P99, Duration::from_micros(50)),
///     Budget::at_least("get_duration_seconds", mpm_metrics::Statistic::Count, 1000.0),
/// ];
/// let report = check_budgets(&registry.snapshot(), &budgets);
/// assert!(report.results[0].passed);
/// assert!(!report.results[1].passed);
/// assert!(!report.passed());
/// # Ok::<(), mpm_metrics::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// The metric name.
    pub metric: String,
    /// The series' labels; empty for a series without labels.
    #[serde(default)]
    pub labels: Vec<(String, String)>,
    /// The statistic limited.
    pub statistic: Statistic,
    /// The limit, in the metric's reported unit (seconds for durations).
    pub limit: f64,
    /// Which side of the limit passes.
    #[serde(default)]
    pub bound: Bound,
}

impl Budget {
    /// `statistic` of `metric` must be at most `limit`.
    pub fn at_most(metric: &str, statistic: Statistic, limit: f64) -> Self {
        Self {
            metric: metric.to_owned(),
            labels: Vec::new(),
            statistic,
            limit,
            bound: Bound::AtMost,
        }
    }

    /// `statistic` of `metric` must be at least `limit`.
    pub fn at_least(metric: &str, statistic: Statistic, limit: f64) -> Self {
        Self {
            bound: Bound::AtLeast,
            ..Self::at_most(metric, statistic, limit)
        }
    }

    /// A duration limit for a histogram reported in seconds.
    pub fn duration_at_most(metric: &str, statistic: Statistic, limit: Duration) -> Self {
        Self::at_most(metric, statistic, limit.as_secs_f64())
    }

    /// The same budget for the series with these labels.
    pub fn with_labels(mut self, labels: &[(&str, &str)]) -> Self {
        self.labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self
    }

    /// Parses a TOML document with a `[[budget]]` array of tables (feature `toml`, on by
    /// default).
    ///
    /// ```
    /// let budgets = mpm_metrics::Budget::parse_toml(r#"
    /// [[budget]]
    /// metric = "get_duration_seconds"
    /// statistic = "p99"
    /// limit = 0.00005
    /// "#)?;
    /// assert_eq!(budgets.len(), 1);
    /// # Ok::<(), mpm_metrics::Error>(())
    /// ```
    #[cfg(feature = "toml")]
    pub fn parse_toml(text: &str) -> Result<Vec<Budget>, Error> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            budget: Vec<Budget>,
        }
        let file: File = toml::from_str(text).map_err(|e| Error::InvalidBudget(e.to_string()))?;
        for b in &file.budget {
            if !b.limit.is_finite() {
                return Err(Error::InvalidBudget(format!(
                    "the limit of the budget on {:?} is not finite",
                    b.metric
                )));
            }
        }
        Ok(file.budget)
    }
}

/// The outcome of one budget.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetResult {
    /// The budget checked.
    pub budget: Budget,
    /// The figure found, or `None` when the series or the statistic does not exist.
    pub actual: Option<f64>,
    /// Whether the budget holds. A missing figure fails.
    pub passed: bool,
}

/// The outcome of every budget, in the order given.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetReport {
    /// One result per budget.
    pub results: Vec<BudgetResult>,
}

impl BudgetReport {
    /// Whether every budget holds.
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.passed)
    }

    /// The budgets that failed.
    pub fn failures(&self) -> impl Iterator<Item = &BudgetResult> {
        self.results.iter().filter(|r| !r.passed)
    }
}

impl fmt::Display for BudgetReport {
    /// A table a person can read: one line per budget.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.results {
            let b = &r.budget;
            let op = match b.bound {
                Bound::AtMost => "<=",
                Bound::AtLeast => ">=",
            };
            let actual = r
                .actual
                .map_or_else(|| "missing".to_owned(), |a| format!("{a:.6}"));
            let labels: Vec<String> = b.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            writeln!(
                f,
                "{:4} {}{{{}}} {:?} = {} (limit {} {})",
                if r.passed { "ok" } else { "FAIL" },
                b.metric,
                labels.join(","),
                b.statistic,
                actual,
                op,
                b.limit
            )?;
        }
        Ok(())
    }
}

/// Checks `snapshot` against every budget.
pub fn check_budgets(snapshot: &Snapshot, budgets: &[Budget]) -> BudgetReport {
    let results = budgets
        .iter()
        .map(|b| {
            let labels: Vec<(&str, &str)> = b
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let actual = snapshot
                .get(&b.metric, &labels)
                .and_then(|v| b.statistic.of(v, snapshot.uptime_seconds));
            let passed = match (actual, b.bound) {
                (Some(a), Bound::AtMost) => a <= b.limit,
                (Some(a), Bound::AtLeast) => a >= b.limit,
                (None, _) => false,
            };
            BudgetResult {
                budget: b.clone(),
                actual,
                passed,
            }
        })
        .collect();
    BudgetReport { results }
}
