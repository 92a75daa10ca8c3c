//! [`Scope`]: one component instance's view of a registry, which names its metrics by the
//! [contract](crate::contract).

use std::collections::HashMap;
use std::sync::Arc;

use crate::collector::CollectorId;
use crate::{Buckets, Counter, Error, Gauge, Histogram, IntGauge, Registry, Unit};

/// The label every series of a [`Scope`] carries: the component's instance name.
pub const INSTANCE_LABEL: &str = "name";

/// Who holds each (component, instance) pair of a registry.
#[derive(Default)]
pub(crate) struct Claims {
    held: HashMap<(String, String), Claim>,
}

#[derive(Clone, Copy)]
enum Claim {
    Exclusive,
    Shared(usize),
}

/// One component instance's handle on a registry, from [`Registry::scope`] or
/// [`Registry::shared_scope`]: it names every metric `mpm_<component>_<what>`, adds the label
/// `name="<instance>"` to every series, checks the [contract](crate::contract)'s naming rules
/// and takes the help text at registration. Cheap to clone; when the last clone is dropped,
/// the claim on (component, instance) is released and the collectors registered through it are
/// removed (the series stay, so a rebuilt component with the same name continues its counters).
/// So a component keeps its scope for as long as it lives, typically in its shared state.
///
/// ```
/// use mpm_metrics::{Error, Registry, Unit};
///
/// let registry = Registry::default();
/// let scope = registry.scope("cache", "profiles")?;
/// scope.counter("hits_total", "Lookups answered from memory.", &[])?.inc();
/// let load = scope.histogram("load_seconds", "Time spent in the loader.", Unit::Seconds, &[])?;
/// load.record_duration(std::time::Duration::from_millis(3));
///
/// let text = registry.render_prometheus();
/// assert!(text.contains("# HELP mpm_cache_hits_total Lookups answered from memory.\n"));
/// assert!(text.contains("mpm_cache_hits_total{name=\"profiles\"} 1\n"));
///
/// // A second cache called "profiles" is refused...
/// assert!(matches!(registry.scope("cache", "profiles"), Err(Error::AlreadyRegistered { .. })));
/// // ...and counters must end in `_total`.
/// assert!(scope.counter("hits", "Hits.", &[]).is_err());
/// # Ok::<(), mpm_metrics::Error>(())
/// ```
#[derive(Clone)]
pub struct Scope {
    inner: Arc<ScopeInner>,
}

struct ScopeInner {
    registry: Registry,
    component: String,
    instance: String,
    prefix: String,
    collectors: parking_lot::Mutex<Vec<CollectorId>>,
}

impl Drop for ScopeInner {
    fn drop(&mut self) {
        for id in self.collectors.get_mut().drain(..) {
            self.registry.remove_collector(id);
        }
        let key = (self.component.clone(), self.instance.clone());
        let mut claims = self.registry.inner.claims.lock();
        match claims.held.get(&key).copied() {
            Some(Claim::Shared(n)) if n > 1 => {
                claims.held.insert(key, Claim::Shared(n - 1));
            }
            _ => {
                claims.held.remove(&key);
            }
        }
    }
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("component", &self.inner.component)
            .field("instance", &self.inner.instance)
            .finish()
    }
}

impl Registry {
    /// Claims (component, instance) in this registry for one component: metrics registered
    /// through the scope are named `mpm_<component>_<what>` and labelled `name="<instance>"`.
    ///
    /// `component` is the crate's short name, optionally followed by the kind of component
    /// (`cache`, `cache_disk`, `pool`, `pool_keyed`): lower-case letters, digits and `_`,
    /// starting with a letter. `instance` is any non-empty text. A second claim of the same
    /// pair while the first scope lives is refused with [`Error::AlreadyRegistered`]; use
    /// [`Registry::shared_scope`] on both sides to share one set of series on purpose.
    pub fn scope(&self, component: &str, instance: &str) -> Result<Scope, Error> {
        self.claim(component, instance, false)
    }

    /// Like [`Registry::scope`], but any number of shared scopes of one (component, instance)
    /// may live at once, and they report into the same series. A shared claim still conflicts
    /// with an exclusive one.
    pub fn shared_scope(&self, component: &str, instance: &str) -> Result<Scope, Error> {
        self.claim(component, instance, true)
    }

    fn claim(&self, component: &str, instance: &str, shared: bool) -> Result<Scope, Error> {
        check_word(component, "the component")?;
        if instance.is_empty() {
            return Err(Error::InvalidMetricName {
                name: format!("mpm_{component}_*"),
                reason: "the instance name is empty",
            });
        }
        let key = (component.to_owned(), instance.to_owned());
        let mut claims = self.inner.claims.lock();
        let next = match (claims.held.get(&key), shared) {
            (None, false) => Claim::Exclusive,
            (None, true) => Claim::Shared(1),
            (Some(Claim::Shared(n)), true) => Claim::Shared(n + 1),
            _ => {
                return Err(Error::AlreadyRegistered {
                    component: component.to_owned(),
                    instance: instance.to_owned(),
                });
            }
        };
        claims.held.insert(key, next);
        drop(claims);
        Ok(Scope {
            inner: Arc::new(ScopeInner {
                registry: self.clone(),
                component: component.to_owned(),
                instance: instance.to_owned(),
                prefix: format!("mpm_{component}_"),
                collectors: parking_lot::Mutex::new(Vec::new()),
            }),
        })
    }
}

impl Scope {
    /// The registry this scope reports into.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The component kind, such as `cache`.
    pub fn component(&self) -> &str {
        &self.inner.component
    }

    /// The instance name, the value of the [`INSTANCE_LABEL`] label.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// The full metric name for `what`: `mpm_<component>_<what>`.
    pub fn metric_name(&self, what: &str) -> String {
        format!("{}{what}", self.inner.prefix)
    }

    /// Gets or creates the counter `mpm_<component>_<what>`; `what` must end in `_total`.
    pub fn counter(
        &self,
        what: &str,
        help: &str,
        labels: &[(&str, &str)],
    ) -> Result<Counter, Error> {
        let name = self.prepare(what, help, Shape::Counter)?;
        self.with_labels(labels, |l| self.inner.registry.counter(&name, l))
    }

    /// Gets or creates the floating-point gauge `mpm_<component>_<what>`.
    pub fn gauge(&self, what: &str, help: &str, labels: &[(&str, &str)]) -> Result<Gauge, Error> {
        let name = self.prepare(what, help, Shape::Gauge)?;
        self.with_labels(labels, |l| self.inner.registry.gauge(&name, l))
    }

    /// Gets or creates the integer gauge `mpm_<component>_<what>`.
    pub fn int_gauge(
        &self,
        what: &str,
        help: &str,
        labels: &[(&str, &str)],
    ) -> Result<IntGauge, Error> {
        let name = self.prepare(what, help, Shape::Gauge)?;
        self.with_labels(labels, |l| self.inner.registry.int_gauge(&name, l))
    }

    /// Gets or creates the histogram `mpm_<component>_<what>` with the default bucket layout
    /// of its unit ([`Buckets::default_for`]). `what` must end in `_seconds` for
    /// [`Unit::Seconds`] and in `_bytes` for [`Unit::Bytes`]. Every record counts: sample the
    /// timing if it is too costly, never the count.
    pub fn histogram(
        &self,
        what: &str,
        help: &str,
        unit: Unit,
        labels: &[(&str, &str)],
    ) -> Result<Histogram, Error> {
        let name = self.prepare(what, help, Shape::Histogram(unit))?;
        self.with_labels(labels, |l| self.inner.registry.histogram(&name, l, unit))
    }

    /// [`Scope::histogram`] exposed at these bucket bounds instead of the default.
    pub fn histogram_with_buckets(
        &self,
        what: &str,
        help: &str,
        unit: Unit,
        buckets: Buckets,
        labels: &[(&str, &str)],
    ) -> Result<Histogram, Error> {
        let h = self.histogram(what, help, unit, labels)?;
        self.inner
            .registry
            .set_buckets(&self.metric_name(what), buckets)?;
        Ok(h)
    }

    /// Registers a collector ([`Registry::add_collector`]) that lives no longer than this
    /// scope nor than `target`: the usual way for a component to keep its gauges fresh at
    /// scrape time. Give it the `Arc` of the component's shared state, never the component's
    /// own handle wrapped again, or the state is kept alive by nothing but the collector's
    /// weak reference and the collector ends at once.
    pub fn collector<T: Send + Sync + 'static>(
        &self,
        target: &Arc<T>,
        collect: impl Fn(&T) + Send + Sync + 'static,
    ) -> CollectorId {
        let id = self.inner.registry.add_collector(target, collect);
        self.inner.collectors.lock().push(id);
        id
    }

    /// Checks the name and the help text, records the help: the full metric name.
    fn prepare(&self, what: &str, help: &str, shape: Shape) -> Result<String, Error> {
        let name = self.checked_name(what, shape)?;
        self.describe(&name, help)?;
        Ok(name)
    }

    fn describe(&self, name: &str, help: &str) -> Result<(), Error> {
        let help = help.trim();
        if help.is_empty() {
            return Err(Error::InvalidMetricName {
                name: name.to_owned(),
                reason: "the help text is empty; say what the metric counts",
            });
        }
        self.inner.registry.describe(name, help)
    }

    fn with_labels<T>(
        &self,
        labels: &[(&str, &str)],
        make: impl FnOnce(&[(&str, &str)]) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if let Some((k, _)) = labels.iter().find(|(k, _)| *k == INSTANCE_LABEL) {
            return Err(Error::InvalidLabelName {
                metric: self.inner.prefix.clone(),
                label: (*k).to_owned(),
                reason: "the scope sets this label to the instance name",
            });
        }
        let mut all: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + 1);
        all.push((INSTANCE_LABEL, &self.inner.instance));
        all.extend_from_slice(labels);
        make(&all)
    }

    fn checked_name(&self, what: &str, shape: Shape) -> Result<String, Error> {
        let name = self.metric_name(what);
        let fail = |reason| {
            Err(Error::InvalidMetricName {
                name: name.clone(),
                reason,
            })
        };
        check_word(what, "the metric")?;
        let reserved = ["_sum", "_count", "_bucket"];
        if reserved.iter().any(|s| what.ends_with(s)) {
            return fail("`_sum`, `_count` and `_bucket` are reserved for histogram series");
        }
        match shape {
            Shape::Counter if !what.ends_with("_total") => {
                fail("a counter's name ends in `_total`")
            }
            Shape::Gauge | Shape::Histogram(_) if what.ends_with("_total") => {
                fail("only counters end in `_total`")
            }
            Shape::Histogram(Unit::Seconds) if !what.ends_with("_seconds") => {
                fail("a histogram in seconds ends in `_seconds`")
            }
            Shape::Histogram(Unit::Bytes) if !what.ends_with("_bytes") => {
                fail("a histogram in bytes ends in `_bytes`")
            }
            _ => Ok(name),
        }
    }
}

#[derive(Clone, Copy)]
enum Shape {
    Counter,
    Gauge,
    Histogram(Unit),
}

/// `[a-z][a-z0-9_]*`, not ending in `_`.
fn check_word(word: &str, what: &'static str) -> Result<(), Error> {
    let ok = word.starts_with(|c: char| c.is_ascii_lowercase())
        && !word.ends_with('_')
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidMetricName {
            name: word.to_owned(),
            reason: match what {
                "the component" => {
                    "a component is lower-case letters, digits and `_`, starting with a letter"
                }
                _ => {
                    "a metric's part is lower-case letters, digits and `_`, starting with a letter"
                }
            },
        })
    }
}
