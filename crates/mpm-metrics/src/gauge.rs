//! Gauges: values that go up and down, as floats or as integers.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

pub(crate) struct GaugeCell {
    bits: CachePadded<AtomicU64>,
    rejected: AtomicU64,
}

impl Default for GaugeCell {
    fn default() -> Self {
        Self {
            bits: CachePadded::new(AtomicU64::new(0f64.to_bits())),
            rejected: AtomicU64::new(0),
        }
    }
}

/// A handle to a floating-point gauge. Cloning it is cheap; every clone sees one value.
///
/// NaN and infinite inputs are never stored: the gauge keeps its value, counts the refusal
/// (see [`Gauge::rejected`]) and the call returns `false`. An `add` whose result would be
/// infinite is refused the same way.
///
/// ```
/// use mpm_metrics::Gauge;
///
/// let load = Gauge::new();
/// load.set(0.5);
/// load.add(0.25);
/// load.sub(0.5);
/// assert_eq!(load.get(), 0.25);
/// assert!(!load.set(f64::NAN));
/// assert_eq!(load.get(), 0.25);
/// assert_eq!(load.rejected(), 1);
/// ```
#[derive(Clone, Default)]
pub struct Gauge {
    cell: Arc<GaugeCell>,
}

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Gauge").field(&self.get()).finish()
    }
}

impl Gauge {
    /// A new gauge at zero, not attached to any registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the value. Returns `false` (and stores nothing) for NaN or infinity.
    #[inline]
    pub fn set(&self, value: f64) -> bool {
        if !value.is_finite() {
            self.reject();
            return false;
        }
        self.cell.bits.store(value.to_bits(), Ordering::Relaxed);
        true
    }

    /// Adds `delta`. Returns `false` (and changes nothing) when `delta` or the result is not
    /// finite.
    #[inline]
    pub fn add(&self, delta: f64) -> bool {
        if !delta.is_finite() {
            self.reject();
            return false;
        }
        let mut current = self.cell.bits.load(Ordering::Relaxed);
        loop {
            let next = f64::from_bits(current) + delta;
            if !next.is_finite() {
                self.reject();
                return false;
            }
            match self.cell.bits.compare_exchange_weak(
                current,
                next.to_bits(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Subtracts `delta`; see [`Gauge::add`].
    #[inline]
    pub fn sub(&self, delta: f64) -> bool {
        self.add(-delta)
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.cell.bits.load(Ordering::Relaxed))
    }

    /// How many NaN or infinite values were refused.
    pub fn rejected(&self) -> u64 {
        self.cell.rejected.load(Ordering::Relaxed)
    }

    /// Asks for the cell's cache line; see the `prefetch` module.
    #[inline]
    pub(crate) fn prefetch(&self) {
        crate::prefetch::prefetch(Arc::as_ptr(&self.cell), 1);
    }

    fn reject(&self) {
        self.cell.rejected.fetch_add(1, Ordering::Relaxed);
    }
}

/// A handle to an integer gauge (sizes, in-flight requests). Cloning it is cheap.
///
/// ```
/// use mpm_metrics::IntGauge;
///
/// let in_flight = IntGauge::new();
/// in_flight.inc();
/// in_flight.add(2);
/// in_flight.dec();
/// assert_eq!(in_flight.get(), 2);
/// in_flight.set(-5);
/// assert_eq!(in_flight.get(), -5);
/// ```
#[derive(Clone, Default)]
pub struct IntGauge {
    cell: Arc<CachePadded<AtomicI64>>,
}

impl std::fmt::Debug for IntGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("IntGauge").field(&self.get()).finish()
    }
}

impl IntGauge {
    /// A new gauge at zero, not attached to any registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, value: i64) {
        self.cell.store(value, Ordering::Relaxed);
    }

    /// Adds `delta` (wrapping).
    #[inline]
    pub fn add(&self, delta: i64) {
        self.cell.fetch_add(delta, Ordering::Relaxed);
    }

    /// Subtracts `delta` (wrapping).
    #[inline]
    pub fn sub(&self, delta: i64) {
        self.cell.fetch_sub(delta, Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.sub(1);
    }

    /// Asks for the cell's cache line; see the `prefetch` module.
    #[inline]
    pub(crate) fn prefetch(&self) {
        crate::prefetch::prefetch(Arc::as_ptr(&self.cell), 1);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> i64 {
        self.cell.load(Ordering::Relaxed)
    }
}
