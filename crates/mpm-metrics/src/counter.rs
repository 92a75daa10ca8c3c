//! Monotonic counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

/// A handle to a monotonic counter. Cloning it is cheap; every clone adds to the same value.
///
/// Incrementing is one relaxed atomic add on a cache-line-padded cell: no map, no lock.
///
/// ```
/// use mpm_metrics::Counter;
///
/// let requests = Counter::new();
/// requests.inc();
/// requests.add(41);
/// assert_eq!(requests.get(), 42);
/// ```
#[derive(Clone, Default)]
pub struct Counter {
    cell: Arc<CachePadded<AtomicU64>>,
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Counter").field(&self.get()).finish()
    }
}

impl Counter {
    /// A new counter at zero, not attached to any registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.cell.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`. The counter wraps around at `u64::MAX`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.cell.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the value when it is larger than the current one (for counters mirrored from
    /// elsewhere, such as the `metrics` crate's `absolute`).
    #[inline]
    pub fn absolute(&self, value: u64) {
        self.cell.fetch_max(value, Ordering::Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.cell.load(Ordering::Relaxed)
    }

    /// Whether two handles count into the same cell.
    pub fn same_as(&self, other: &Counter) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }
}
