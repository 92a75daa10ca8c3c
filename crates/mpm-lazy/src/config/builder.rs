//! [`ConfigBuilder`]: opens a [`LazyConfig`] with a format and metrics, and the metrics it
//! reports.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use mpm_metrics::{Counter, Histogram, IntGauge, Registry, Scope, Unit};

use super::{Format, LazyConfig, Reload, Snapshot};
use crate::error::Error;

/// Builds a [`LazyConfig`]: `LazyConfig::builder(path)`, then [`format`](ConfigBuilder::format)
/// and [`metrics`](ConfigBuilder::metrics) in any order, then [`build`](ConfigBuilder::build).
/// [`LazyConfig::open`] is the short way without either.
#[derive(Debug)]
pub struct ConfigBuilder {
    path: PathBuf,
    format: Option<Format>,
    metrics: Option<(Registry, String)>,
}

impl ConfigBuilder {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            format: None,
            metrics: None,
        }
    }

    /// Reads the file as `format` instead of the format its extension names.
    #[must_use]
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// Reports into `registry` under the instance name `name` (the label `name`): the metrics
    /// listed in the [crate docs](crate#metrics). The name is claimed at
    /// [`build`](ConfigBuilder::build).
    #[must_use]
    pub fn metrics(mut self, registry: &Registry, name: &str) -> Self {
        self.metrics = Some((registry.clone(), name.to_owned()));
        self
    }

    /// Opens the file; reads and parses nothing yet.
    ///
    /// # Errors
    ///
    /// As [`LazyConfig::open`], and [`Error::Metrics`] when the registry refuses the metrics
    /// (another configuration of the same name reports into it).
    pub fn build(self) -> Result<LazyConfig, Error> {
        let format = match self.format {
            Some(format) => format,
            None => Format::from_path(&self.path).ok_or_else(|| Error::UnknownFormat {
                path: self.path.clone(),
            })?,
        };
        let mut config = LazyConfig::open_as(self.path, format)?;
        if let Some((registry, name)) = self.metrics {
            config.metrics = Some(ConfigMetrics::new(&registry, &name, &config.current)?);
        }
        Ok(config)
    }
}

/// The metrics of one configuration file.
pub(super) struct ConfigMetrics {
    parsed_ok: Histogram,
    parsed_error: Histogram,
    applied: Counter,
    unchanged: Counter,
    refused: Counter,
    // Held so the name stays claimed, and the collector runs, for as long as the config lives.
    _scope: Scope,
}

impl ConfigMetrics {
    /// The component of every configuration's metrics: `mpm_lazy_config_*`.
    const COMPONENT: &'static str = "lazy_config";

    fn new(
        registry: &Registry,
        name: &str,
        current: &Arc<ArcSwap<Snapshot>>,
    ) -> Result<Self, mpm_metrics::Error> {
        let scope = registry.scope(Self::COMPONENT, name)?;
        let parse = |outcome| {
            scope.histogram(
                "section_parse_seconds",
                "Time spent parsing a section on its first use (per type), by outcome.",
                Unit::Seconds,
                &[("outcome", outcome)],
            )
        };
        let reload = |outcome| {
            scope.counter(
                "reloads_total",
                "Calls to reload(), by outcome: applied, unchanged or refused.",
                &[("outcome", outcome)],
            )
        };
        let sections: IntGauge = scope.int_gauge(
            "sections_parsed",
            "Sections (per type) parsed from the current content, at scrape time.",
            &[],
        )?;
        scope.collector(current, move |current| {
            let parsed = current.load().sections.read().len();
            sections.set(i64::try_from(parsed).unwrap_or(i64::MAX));
        });
        Ok(Self {
            parsed_ok: parse("ok")?,
            parsed_error: parse("error")?,
            applied: reload("applied")?,
            unchanged: reload("unchanged")?,
            refused: reload("refused")?,
            _scope: scope,
        })
    }

    /// Records one section parse that started at `started`.
    pub(super) fn parsed(&self, started: Instant, ok: bool) {
        let histogram = if ok {
            &self.parsed_ok
        } else {
            &self.parsed_error
        };
        histogram.record_duration(started.elapsed());
    }

    /// Counts one reload by its outcome.
    pub(super) fn reloaded(&self, result: &Result<Reload, Error>) {
        match result {
            Ok(Reload::Applied { .. }) => self.applied.inc(),
            Ok(Reload::Unchanged) => self.unchanged.inc(),
            Err(_) => self.refused.inc(),
        }
    }
}
