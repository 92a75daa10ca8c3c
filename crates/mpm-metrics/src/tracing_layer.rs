//! A `tracing_subscriber::Layer` that records span durations into histograms.

use std::collections::HashMap;

use parking_lot::RwLock;
use tracing::Subscriber;
use tracing::callsite::Identifier;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::{Histogram, Registry, Unit, sanitize_metric_name};

/// Records how long each span lives, from creation to close, into the histogram
/// `{span_name}_duration_seconds` (the span name passed through
/// [`sanitize_metric_name`]). Histograms are resolved once per call site.
///
/// ```
/// use mpm_metrics::{MetricsLayer, Registry};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let registry = Registry::default();
/// let subscriber = tracing_subscriber::registry().with(MetricsLayer::new(registry.clone()));
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("load_profile");
///     let _entered = span.enter();
/// });
/// let snap = registry.snapshot();
/// let h = snap.get("load_profile_duration_seconds", &[]).unwrap();
/// assert_eq!(h.as_histogram().unwrap().count, 1);
/// ```
#[derive(Debug)]
pub struct MetricsLayer {
    registry: Registry,
    by_callsite: RwLock<HashMap<Identifier, Option<Histogram>>>,
}

impl MetricsLayer {
    /// A layer recording into `registry`.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            by_callsite: RwLock::new(HashMap::new()),
        }
    }

    fn histogram_for(&self, meta: &'static tracing::Metadata<'static>) -> Option<Histogram> {
        let id = meta.callsite();
        if let Some(h) = self.by_callsite.read().get(&id) {
            return h.clone();
        }
        let name = format!("{}_duration_seconds", sanitize_metric_name(meta.name()));
        // A name taken by another kind of metric leaves this span unrecorded (remembered as
        // `None`) rather than failing the application.
        let h = self.registry.histogram(&name, &[], Unit::Seconds).ok();
        self.by_callsite.write().insert(id, h.clone());
        h
    }
}

struct SpanTiming {
    histogram: Histogram,
    start: quanta::Instant,
}

impl<S> tracing_subscriber::Layer<S> for MetricsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(histogram) = self.histogram_for(attrs.metadata()) else {
            return;
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanTiming {
                histogram,
                start: quanta::Instant::now(),
            });
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(t) = span.extensions().get::<SpanTiming>()
        {
            t.histogram
                .record_duration(quanta::Instant::now().saturating_duration_since(t.start));
        }
    }
}
