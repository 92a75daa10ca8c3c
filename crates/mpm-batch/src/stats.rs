//! A [`Batcher`](crate::Batcher)'s statistics: the `mpm-metrics` handles it records into,
//! and the [`BatcherStats`] snapshot read from them.
//!
//! Every series the crate exports is named in this file, so that a rename is one edit; the
//! table of them is in the [crate docs](crate#metrics). With a registry
//! (`BatcherBuilder::metrics(&registry, name)`), the batcher claims the component `batch` and
//! the name at `build` and each series carries the label `name`.

use mpm_metrics::{Counter, Histogram, IntGauge, Registry, Scope, Unit};

use crate::batcher::FlushReason;
use crate::error::Error;

/// How many batches were handed over for each [`FlushReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushCounts {
    /// The batch reached `max_items`.
    pub size: u64,
    /// `max_delay` passed since the batch's first item.
    pub time: u64,
    /// `flush()` was called.
    pub flush: u64,
    /// The batcher shut down.
    pub shutdown: u64,
}

/// A snapshot of a [`Batcher`](crate::Batcher)'s counts, from
/// [`Batcher::stats`](crate::Batcher::stats).
///
/// Every accepted item is in exactly one place: `accepted = delivered + returned +
/// dropped_oldest + lost + queued + (items with the consumer now)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatcherStats {
    /// Items taken into the queue.
    pub accepted: u64,
    /// Items in batches the consumer took.
    pub delivered: u64,
    /// Items refused because the queue was full.
    pub rejected: u64,
    /// Queued items dropped to make room for newer ones.
    pub dropped_oldest: u64,
    /// Items in batches the consumer failed, counted and dropped
    /// ([`OnFailure::CountLost`](crate::OnFailure::CountLost)), or left when the worker died.
    pub lost: u64,
    /// Items in failed batches kept for the caller
    /// ([`OnFailure::Return`](crate::OnFailure::Return)).
    pub returned: u64,
    /// Batches whose consumer returned an error.
    pub consumer_errors: u64,
    /// Batches whose consumer panicked.
    pub consumer_panics: u64,
    /// Batches handed over, by reason.
    pub flushes: FlushCounts,
    /// Items queued now.
    pub queued: u64,
    /// The most items ever queued at once: never more than the capacity.
    pub peak_queued: u64,
}

/// Why items were dropped, as the `reason` label says it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dropped {
    Rejected,
    Oldest,
    Lost,
}

/// The handles a batcher records into.
pub(crate) struct BatcherMetrics {
    pub(crate) accepted: Counter,
    pub(crate) delivered: Counter,
    dropped: [Counter; 3],
    pub(crate) returned: Counter,
    pub(crate) consumer_errors: Counter,
    pub(crate) consumer_panics: Counter,
    flushes: [Counter; 4],
    batch_size: Histogram,
    wait: Histogram,
    queued: IntGauge,
    peak_queued: IntGauge,
    /// The claim on the registry, for a batcher given one: it releases the name and ends the
    /// collector when the batcher's state is dropped.
    scope: Option<Scope>,
}

impl BatcherMetrics {
    /// Handles of its own, in no registry.
    pub(crate) fn detached() -> Self {
        BatcherMetrics {
            accepted: Counter::new(),
            delivered: Counter::new(),
            dropped: Default::default(),
            returned: Counter::new(),
            consumer_errors: Counter::new(),
            consumer_panics: Counter::new(),
            flushes: Default::default(),
            batch_size: Histogram::new(),
            wait: Histogram::new(),
            queued: IntGauge::new(),
            peak_queued: IntGauge::new(),
            scope: None,
        }
    }

    /// Handles in `registry`, in the scope `batch`/`name`.
    pub(crate) fn register(registry: &Registry, name: &str) -> Result<Self, Error> {
        Self::try_register(registry, name).map_err(|source| Error::Metrics {
            name: name.to_owned(),
            source,
        })
    }

    fn try_register(registry: &Registry, name: &str) -> Result<Self, mpm_metrics::Error> {
        let scope = registry.scope("batch", name)?;
        let dropped = |reason: &str| {
            scope.counter(
                "items_dropped_total",
                "Items dropped, by reason: rejected (queue full), dropped_oldest (made room) or lost (consumer failed, or the worker died).",
                &[("reason", reason)],
            )
        };
        let failures = |kind: &str| {
            scope.counter(
                "consumer_failures_total",
                "Batches the consumer failed, by kind: error or panic.",
                &[("kind", kind)],
            )
        };
        let flushes = |reason: FlushReason| {
            scope.counter(
                "flushes_total",
                "Batches handed to the consumer, by reason: size, time, flush or shutdown.",
                &[("reason", reason.as_str())],
            )
        };
        Ok(BatcherMetrics {
            accepted: scope.counter("items_accepted_total", "Items taken into the queue.", &[])?,
            delivered: scope.counter(
                "items_delivered_total",
                "Items in batches the consumer took.",
                &[],
            )?,
            dropped: [
                dropped("rejected")?,
                dropped("dropped_oldest")?,
                dropped("lost")?,
            ],
            returned: scope.counter(
                "items_returned_total",
                "Items in failed batches kept for the caller.",
                &[],
            )?,
            consumer_errors: failures("error")?,
            consumer_panics: failures("panic")?,
            flushes: [
                flushes(FlushReason::Size)?,
                flushes(FlushReason::Time)?,
                flushes(FlushReason::Flush)?,
                flushes(FlushReason::Shutdown)?,
            ],
            batch_size: scope.histogram(
                "batch_size",
                "Items per batch handed to the consumer.",
                Unit::None,
                &[],
            )?,
            wait: scope.histogram(
                "wait_seconds",
                "Time from a batch's first item to its hand-over.",
                Unit::Seconds,
                &[],
            )?,
            queued: scope.int_gauge("queued", "Items queued, at scrape time.", &[])?,
            peak_queued: scope.int_gauge(
                "queued_peak",
                "The most items ever queued at once, at scrape time.",
                &[],
            )?,
            scope: Some(scope),
        })
    }

    /// The claim on the registry, if the batcher was given one.
    pub(crate) fn scope(&self) -> Option<&Scope> {
        self.scope.as_ref()
    }

    /// Sets the gauges from the queue's state (a collector calls this at each scrape).
    pub(crate) fn set_queued(&self, queued: usize, peak: usize) {
        self.queued.set(gauge_value(queued));
        self.peak_queued.set(gauge_value(peak));
    }

    pub(crate) fn dropped(&self, why: Dropped, n: usize) {
        self.dropped[why as usize].add(n as u64);
    }

    /// A batch of `items` handed over for `reason` after `waited`.
    pub(crate) fn handed_over(
        &self,
        reason: FlushReason,
        items: usize,
        waited: std::time::Duration,
    ) {
        self.flushes[reason as usize].inc();
        self.batch_size.record(items as u64);
        self.wait.record_duration(waited);
    }

    pub(crate) fn snapshot(&self, queued: usize, peak: usize) -> BatcherStats {
        let [rejected, dropped_oldest, lost] = &self.dropped;
        let [size, time, flush, shutdown] = &self.flushes;
        BatcherStats {
            accepted: self.accepted.get(),
            delivered: self.delivered.get(),
            rejected: rejected.get(),
            dropped_oldest: dropped_oldest.get(),
            lost: lost.get(),
            returned: self.returned.get(),
            consumer_errors: self.consumer_errors.get(),
            consumer_panics: self.consumer_panics.get(),
            flushes: FlushCounts {
                size: size.get(),
                time: time.get(),
                flush: flush.get(),
                shutdown: shutdown.get(),
            },
            queued: queued as u64,
            peak_queued: peak as u64,
        }
    }
}

fn gauge_value(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
