//! The observability contract every mpm crate follows, and the check that keeps each crate's
//! table of metrics true.
//!
//! # 1. Being given a registry
//!
//! Every builder of a component that reports metrics has one method, spelt the same everywhere:
//!
//! ```text
//! Builder::metrics(self, registry: &Registry, name: &str) -> Self
//! ```
//!
//! It only stores the pair; `build()` claims the component's [`Scope`] with
//! [`Registry::scope`](crate::Registry::scope)`(COMPONENT, name)` and returns the error, if any, so a chain of builder
//! calls never fails half-way. A component built without `.metrics(..)` records nothing into any
//! registry (its own statistics, if it has them, still work).
//!
//! # 2. Names
//!
//! - A metric is named `mpm_<component>_<what>_<unit>`: `<component>` is the crate's short name,
//!   optionally followed by the kind of component (`cache`, `cache_disk`, `pool`,
//!   `pool_keyed`, `pool_breaker`, `lazy`, `memory_opt`, `batch`); [`Scope`] adds the
//!   `mpm_<component>_` prefix, so a crate writes only `<what>_<unit>`.
//! - The unit is the base unit, plural: `_seconds`, `_bytes`. Counters end in `_total` (and
//!   only counters do): `mpm_cache_hits_total`, `mpm_pool_acquire_seconds`,
//!   `mpm_cache_weight_bytes`. A gauge of a count has no unit: `mpm_pool_idle`.
//! - Every series carries the label `name` ([`INSTANCE_LABEL`]) holding the instance name
//!   given to `.metrics(&registry, name)`. Other labels say which part or outcome
//!   (`tier="l1"`, `reason="timeout"`) and have a small, fixed set of values.
//! - Every metric has a help text, given at registration.
//! - One (component, instance) pair is claimed once per registry: a second cache called
//!   `profiles` is refused with [`Error::AlreadyRegistered`](crate::Error::AlreadyRegistered),
//!   unless both ask to share with [`Registry::shared_scope`](crate::Registry::shared_scope).
//!
//! [`Scope`] checks all of this when a metric is registered.
//!
//! # 3. What is counted
//!
//! - A histogram's `_count` is exact: every event is recorded. When timing every event costs too
//!   much, time a sample and count every event in a counter, or record the untimed events
//!   elsewhere; never skip the record.
//! - An event is counted once, where it is decided: a lookup that misses the memory tier and
//!   hits the disk tier is one hit (`tier="l2"`), not a miss and a hit.
//! - Gauges that mirror state (entries, weight, pool size, idle connections) are set by a
//!   collector ([`Scope::collector`]) so they are fresh at every scrape without the application
//!   calling anything. The collector holds a weak reference to the component's state and ends
//!   with it.
//! - Histograms are exposed at a fixed bucket layout ([`Buckets`](crate::Buckets)); a component
//!   that needs other bounds passes them to [`Scope::histogram_with_buckets`].
//!
//! # 4. The table
//!
//! Each crate documents every metric it exports in one markdown table in its crate docs (or a
//! module's), one row per metric:
//!
//! ```text
//! | metric | type | labels | help |
//! |---|---|---|---|
//! | `mpm_cache_hits_total` | counter | `name`, `tier` | Lookups answered by a tier. |
//! | `mpm_cache_entries` | gauge | `name`, `tier` | Entries held, at scrape time. |
//! ```
//!
//! and a test drives every metric at least once and calls [`check_metric_table`] with the table
//! (for example `include_str!("../../src/metrics.md")`, the same file the crate docs include
//! with `#[doc = include_str!(...)]`), the registry's exposition, and the crate's prefix. The
//! check fails on any metric exported but not listed, listed but not exported, of another
//! type, with other label keys, without help text, or breaking a naming rule.
//!
//! # Example: a component following the contract
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use mpm_metrics::{Counter, Registry, Scope, contract};
//!
//! const METRICS: &str = "
//! | metric | type | labels | help |
//! |---|---|---|---|
//! | `mpm_queue_pushed_total` | counter | `name` | Items pushed. |
//! | `mpm_queue_depth` | gauge | `name` | Items waiting, at scrape time. |
//! ";
//!
//! struct State { depth: AtomicUsize }
//! // The component keeps its scope as long as it lives: dropping the scope releases the
//! // name and removes the collectors registered through it.
//! struct Queue { state: Arc<State>, pushed: Option<Counter>, _scope: Option<Scope> }
//! struct QueueBuilder { metrics: Option<(Registry, String)> }
//!
//! impl QueueBuilder {
//!     fn metrics(mut self, registry: &Registry, name: &str) -> Self {
//!         self.metrics = Some((registry.clone(), name.to_owned()));
//!         self
//!     }
//!     fn build(self) -> Result<Queue, mpm_metrics::Error> {
//!         let state = Arc::new(State { depth: AtomicUsize::new(0) });
//!         let (mut pushed, mut scope_kept) = (None, None);
//!         if let Some((registry, name)) = self.metrics {
//!             let scope = registry.scope("queue", &name)?;
//!             pushed = Some(scope.counter("pushed_total", "Items pushed.", &[])?);
//!             let depth = scope.int_gauge("depth", "Items waiting, at scrape time.", &[])?;
//!             scope.collector(&state, move |s| depth.set(s.depth.load(Ordering::Relaxed) as i64));
//!             scope_kept = Some(scope);
//!         }
//!         Ok(Queue { state, pushed, _scope: scope_kept })
//!     }
//! }
//!
//! let registry = Registry::default();
//! let q = QueueBuilder { metrics: None }.metrics(&registry, "jobs").build()?;
//! q.state.depth.fetch_add(2, Ordering::Relaxed);
//! if let Some(c) = &q.pushed { c.add(2); }
//!
//! let text = registry.render_prometheus();
//! assert!(text.contains("mpm_queue_depth{name=\"jobs\"} 2\n"));
//! contract::check_metric_table(METRICS, &text, "mpm_queue_").unwrap();
//! // A second queue called "jobs" fails at build.
//! assert!(QueueBuilder { metrics: None }.metrics(&registry, "jobs").build().is_err());
//! # Ok::<(), mpm_metrics::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

pub use crate::scope::{INSTANCE_LABEL, Scope};
use crate::{DEFAULT_HELP, Exposition};

/// What [`check_metric_table`] found wrong, one problem a line.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("the metric table does not match the exposition:\n{}", .problems.join("\n"))]
pub struct TableMismatch {
    /// Each problem, in words.
    pub problems: Vec<String>,
}

/// Checks a crate's documented table of metrics against a real exposition (see the
/// [module docs](self)): every family of `exposition` whose name starts with `prefix` must be a
/// row of `table` with the same type and label keys, every row must be exported, and each must
/// follow the naming rules. Rows are the lines of `table` whose first cell is a backticked
/// name; the labels cell lists backticked keys (or `-` for none).
pub fn check_metric_table(
    table: &str,
    exposition: &str,
    prefix: &str,
) -> Result<(), TableMismatch> {
    let mut problems = Vec::new();
    let rows = match parse_table(table) {
        Ok(rows) => rows,
        Err(p) => return Err(TableMismatch { problems: vec![p] }),
    };
    let exposed = match Exposition::parse(exposition) {
        Ok(e) => e,
        Err(p) => return Err(TableMismatch { problems: vec![p] }),
    };
    let exported: BTreeMap<&String, _> = exposed
        .families()
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .collect();
    for (name, row) in &rows {
        if !name.starts_with(prefix) {
            problems.push(format!(
                "`{name}` is listed but does not start with `{prefix}`"
            ));
        }
        naming_problems(name, &row.kind, &row.labels, &mut problems);
        let Some(family) = exported.get(name) else {
            problems.push(format!(
                "`{name}` is listed but not exported (is it registered, and does the test drive it?)"
            ));
            continue;
        };
        if family.kind != row.kind {
            problems.push(format!(
                "`{name}` is listed as a {} but exported as a {}",
                row.kind, family.kind
            ));
        }
        if family.label_keys != row.labels {
            problems.push(format!(
                "`{name}` is listed with labels {:?} but exported with {:?}",
                row.labels, family.label_keys
            ));
        }
        if family.help.as_deref().is_none_or(|h| h == DEFAULT_HELP) {
            problems.push(format!("`{name}` is exported without a help text"));
        }
    }
    for name in exported.keys() {
        if !rows.contains_key(*name) {
            problems.push(format!("`{name}` is exported but not listed"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(TableMismatch { problems })
    }
}

struct Row {
    kind: String,
    labels: BTreeSet<String>,
}

fn parse_table(table: &str) -> Result<BTreeMap<String, Row>, String> {
    let mut rows = BTreeMap::new();
    for line in table.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let Some(name) = cells
            .first()
            .and_then(|c| c.strip_prefix('`'))
            .and_then(|c| c.strip_suffix('`'))
        else {
            continue;
        };
        if cells.len() < 3 {
            return Err(format!(
                "the row of `{name}` needs a type and a labels cell: {line:?}"
            ));
        }
        let labels = cells[2]
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_owned())
            .filter(|l| !l.is_empty() && l != "-")
            .collect();
        let row = Row {
            kind: cells[1].to_owned(),
            labels,
        };
        if rows.insert(name.to_owned(), row).is_some() {
            return Err(format!("`{name}` is listed twice"));
        }
    }
    if rows.is_empty() {
        return Err("the table has no rows (the first cell of a row is a backticked name)".into());
    }
    Ok(rows)
}

fn naming_problems(name: &str, kind: &str, labels: &BTreeSet<String>, out: &mut Vec<String>) {
    if !name.starts_with("mpm_") {
        out.push(format!("`{name}` does not start with `mpm_`"));
    }
    match kind {
        "counter" if !name.ends_with("_total") => out.push(format!(
            "`{name}` is a counter, so its name ends in `_total`"
        )),
        "gauge" | "histogram" if name.ends_with("_total") => out.push(format!(
            "`{name}` is not a counter, so it does not end in `_total`"
        )),
        "counter" | "gauge" | "histogram" => {}
        other => out.push(format!("`{name}` has the unknown type {other:?}")),
    }
    if !labels.contains(INSTANCE_LABEL) {
        out.push(format!(
            "`{name}` lacks the instance label `{INSTANCE_LABEL}`"
        ));
    }
}
