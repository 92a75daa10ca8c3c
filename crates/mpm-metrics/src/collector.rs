//! Collectors: callbacks a registry runs before every read, so gauges are fresh when scraped.
//!
//! A component registers a collector with a weak reference to its own state (an `Arc` it
//! already holds) and a function that sets its gauges from that state: entries, weight, pool
//! size, idle connections. [`Registry::snapshot`] and [`Registry::render_prometheus`] run every
//! collector first, so the figures are those of the moment of the scrape, and the application
//! calls nothing. When the state is dropped the collector is dropped too; a collector that
//! panics is counted in `mpm_metrics_collector_panics_total` and the read goes on.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use crate::Registry;

/// The counter of collectors that panicked.
pub const COLLECTOR_PANICS: &str = "mpm_metrics_collector_panics_total";

/// A registered collector: a weak reference to its target and what to do with it.
trait Collect: Send + Sync {
    /// Runs the collector; `false` when its target is gone.
    fn run(&self) -> bool;
    /// Whether its target is still alive.
    fn alive(&self) -> bool;
    /// Asks for the cache line of its target's reference counts, which [`Collect::run`]
    /// reads first; see the `prefetch` module.
    fn prefetch(&self);
}

struct WeakCollector<T, F> {
    target: Weak<T>,
    collect: F,
}

impl<T: Send + Sync, F: Fn(&T) + Send + Sync> Collect for WeakCollector<T, F> {
    fn run(&self) -> bool {
        match self.target.upgrade() {
            Some(t) => {
                (self.collect)(&t);
                true
            }
            None => false,
        }
    }

    fn alive(&self) -> bool {
        self.target.strong_count() > 0
    }

    fn prefetch(&self) {
        // The reference counts sit just before the value in an `Arc`'s allocation; this is
        // only a hint, so an address off the mark costs nothing but the hint.
        let counts = self
            .target
            .as_ptr()
            .cast::<u8>()
            .wrapping_sub(2 * std::mem::size_of::<usize>());
        crate::prefetch::prefetch(counts, 1);
    }
}

/// How many collectors ahead the collector itself is asked for; its target is asked for half
/// as far ahead, once the collector is in cache.
const LOOKAHEAD: usize = 8;

/// The id of a collector, to remove it with [`Registry::remove_collector`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CollectorId(pub(crate) u64);

/// The registered collectors, copied on write so that a read takes one reference count
/// instead of one per collector.
#[derive(Default)]
pub(crate) struct Collectors {
    entries: Arc<Vec<(u64, Arc<dyn Collect>)>>,
}

thread_local! {
    /// Set while this thread runs collectors: a collector that reads the registry does not
    /// run the collectors again.
    static RUNNING: Cell<bool> = const { Cell::new(false) };
}

impl Registry {
    /// Registers a collector: before every [`Registry::snapshot`] and render,
    /// `collect(&target)` runs, typically setting gauges from the target's state. The
    /// registry keeps only a weak reference to `target`: once every other `Arc` to it is
    /// dropped, the collector is removed. A collector that panics is counted in
    /// `mpm_metrics_collector_panics_total` and does not stop the read.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use mpm_metrics::Registry;
    ///
    /// let registry = Registry::default();
    /// let queue = Arc::new(Mutex::new(vec![1, 2, 3]));
    /// let depth = registry.int_gauge("queue_depth", &[])?;
    /// registry.add_collector(&queue, move |q| depth.set(q.lock().unwrap().len() as i64));
    ///
    /// queue.lock().unwrap().push(4);
    /// assert!(registry.render_prometheus().contains("queue_depth 4\n"));
    /// drop(queue);
    /// assert_eq!(registry.collectors(), 0);
    /// # Ok::<(), mpm_metrics::Error>(())
    /// ```
    pub fn add_collector<T: Send + Sync + 'static>(
        &self,
        target: &Arc<T>,
        collect: impl Fn(&T) + Send + Sync + 'static,
    ) -> CollectorId {
        let run: Arc<dyn Collect> = Arc::new(WeakCollector {
            target: Arc::downgrade(target),
            collect,
        });
        let id = self.inner.next_timer.fetch_add(1, Ordering::Relaxed);
        Arc::make_mut(&mut self.inner.collectors.lock().entries).push((id, run));
        CollectorId(id)
    }

    /// Removes a collector. Returns whether it was registered.
    pub fn remove_collector(&self, id: CollectorId) -> bool {
        let mut c = self.inner.collectors.lock();
        if !c.entries.iter().any(|(i, _)| *i == id.0) {
            return false;
        }
        Arc::make_mut(&mut c.entries).retain(|(i, _)| *i != id.0);
        true
    }

    /// How many collectors are registered whose target is still alive.
    pub fn collectors(&self) -> usize {
        let mut c = self.inner.collectors.lock();
        if c.entries.iter().any(|(_, run)| !run.alive()) {
            Arc::make_mut(&mut c.entries).retain(|(_, run)| run.alive());
        }
        c.entries.len()
    }

    /// Runs every collector once; returns how many were found dead (and removed). Called by
    /// [`Registry::snapshot`] and the renderers; a collector that reads the registry does not
    /// trigger a nested run.
    pub(crate) fn run_collectors(&self) -> usize {
        if RUNNING.with(Cell::get) {
            return 0;
        }
        let entries = Arc::clone(&self.inner.collectors.lock().entries);
        if entries.is_empty() {
            return 0;
        }
        RUNNING.with(|r| r.set(true));
        let mut dead = Vec::new();
        let mut panics = 0u64;
        for (i, (id, run)) in entries.iter().enumerate() {
            // Each collector, its target and what it sets are separate allocations, each a
            // cache miss once the registry outgrows the cache; asking ahead overlaps them.
            if let Some((_, ahead)) = entries.get(i + LOOKAHEAD) {
                crate::prefetch::prefetch(Arc::as_ptr(ahead).cast::<u8>(), 1);
            }
            if let Some((_, ahead)) = entries.get(i + LOOKAHEAD / 2) {
                ahead.prefetch();
            }
            match catch_unwind(AssertUnwindSafe(|| run.run())) {
                Ok(true) => {}
                Ok(false) => dead.push(*id),
                Err(_) => panics += 1,
            }
        }
        RUNNING.with(|r| r.set(false));
        if panics > 0 {
            self.count_collector_panics(panics);
        }
        drop(entries);
        if !dead.is_empty() {
            Arc::make_mut(&mut self.inner.collectors.lock().entries)
                .retain(|(id, _)| !dead.contains(id));
        }
        dead.len()
    }

    fn count_collector_panics(&self, n: u64) {
        let _ = self.describe(
            COLLECTOR_PANICS,
            "Collectors that panicked while the registry was read.",
        );
        if let Ok(c) = self.counter(COLLECTOR_PANICS, &[]) {
            c.add(n);
        }
    }
}
