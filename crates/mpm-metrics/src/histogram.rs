//! A lock-free log-linear histogram.
//!
//! # Layout
//!
//! Values are unsigned integers in the caller's unit (nanoseconds for durations, bytes for
//! sizes). Values below 64 each have a bucket of their own and are counted exactly. Above that,
//! each power of two `[2^k, 2^(k+1))` for `k` in `6..44` is cut into [`SUB_BUCKETS`] equal
//! parts. A bucket therefore spans at most `1/51` of its lower bound, and reporting its midpoint
//! is off by at most `1/102` (0.98%) of the true value. Values of `2^44` and above (about 4.9
//! hours in nanoseconds) are counted in the last bucket.
//!
//! 2,002 buckets of 8 bytes make 16,016 bytes. Like a [`Counter`](crate::Counter), a histogram
//! keeps one set of buckets per thread shard (see the counter module: a thread owns one of
//! [`SHARDS`] shard indexes while it lives), made on that thread's first record, and a shared
//! set for threads beyond [`SHARDS`] and for merges. Recording is then a plain load and store on
//! the thread's own bucket: no lock, no allocation after the first record, no atomic
//! read-modify-write (a `lock xadd` costs 2-5 ns depending on the processor, about as much as
//! hdrhistogram's whole `record`). The price is memory: 16 KB per recording thread per
//! histogram. Reading sums the sets. The count, sum, mean, minimum and maximum are derived from
//! the buckets when a snapshot is taken, so they carry the same 1% bound (counts are exact).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;

use crate::counter::{SHARDS, current_shard, thread_shard};

/// Values below this are counted exactly, one bucket each.
const EXACT: u64 = 64;
/// `log2(EXACT)`: the first octave cut into sub-buckets.
const FIRST_OCTAVE: u32 = 6;
/// One past the last octave: values of `2^LAST_OCTAVE` and above land in the last bucket.
const LAST_OCTAVE: u32 = 44;
/// How many equal parts each octave is cut into. 51 keeps the midpoint error below 1%.
pub const SUB_BUCKETS: u64 = 51;
/// The number of buckets in every histogram.
pub const BUCKETS: usize = (EXACT + (LAST_OCTAVE - FIRST_OCTAVE) as u64 * SUB_BUCKETS) as usize;
/// The largest value that is counted in a bucket of its own range; larger values saturate.
pub const MAX_TRACKED: u64 = (1 << LAST_OCTAVE) - 1;

/// The bucket a value falls into: below [`BUCKETS`] for every `u64`.
///
/// Without a branch on the value's size: values are spread over many octaves, so a branch on
/// `value < EXACT` was mispredicted about as often as small values came (a fifth of the
/// benchmark's log-uniform sample, 1 to 10^10). Both indexes are computed and one is selected,
/// and saturation is a `min` on the index instead of a clamp on the value.
#[inline(always)]
fn bucket_index(value: u64) -> usize {
    // The octave, `2^k <= value < 2^(k+1)`, for values of EXACT and above (setting the bit
    // of EXACT changes no higher bit); FIRST_OCTAVE below, where the result is not used.
    let k = 63 - (value | EXACT).leading_zeros();
    // For EXACT <= value < 2^LAST_OCTAVE, the sub-bucket is `((value - 2^k) * 51) >> k`, which
    // is `((value * 51) >> k) - 51` since `2^k * 51` is a multiple of `2^k`, and the index is
    // `EXACT + (k - FIRST_OCTAVE) * 51 + ((value * 51) >> k) - 51`, never below 0 since
    // k >= FIRST_OCTAVE. Larger values give BUCKETS or more (for k >= 58 the product wraps,
    // but `k * 51` alone is then larger), which the `min` turns into the last bucket (if it
    // compiles to a branch, only those take it).
    let cut = (EXACT + (k as u64) * SUB_BUCKETS + (value.wrapping_mul(SUB_BUCKETS) >> k)
        - (FIRST_OCTAVE as u64 + 1) * SUB_BUCKETS)
        .min(BUCKETS as u64 - 1);
    std::hint::select_unpredictable(value < EXACT, value, cut) as usize
}

/// The smallest and largest integer that fall into bucket `index`, both inclusive.
fn bucket_bounds(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < EXACT {
        return (index, index);
    }
    let rest = index - EXACT;
    let k = FIRST_OCTAVE as u64 + rest / SUB_BUCKETS;
    let j = rest % SUB_BUCKETS;
    let base = 1u64 << k;
    // `d = value - base` is in bucket j when j * 2^k <= d * 51 < (j + 1) * 2^k.
    let lo = (j << k).div_ceil(SUB_BUCKETS);
    let hi = ((j + 1) << k).div_ceil(SUB_BUCKETS) - 1;
    (base + lo, base + hi)
}

/// The value reported for bucket `index`: the midpoint of the integers it holds.
fn bucket_value(index: usize) -> f64 {
    let (lo, hi) = bucket_bounds(index);
    (lo as f64 + hi as f64) / 2.0
}

/// One count per bucket. A fixed-size array, so that an index from [`bucket_index`] needs no
/// bounds check.
type Counts = Box<[AtomicU64; BUCKETS]>;

pub(crate) struct HistogramCell {
    /// Buckets for threads without a shard of their own (more than [`SHARDS`] alive at once)
    /// and for merges, written with `fetch_add`.
    buckets: Counts,
    /// One set of buckets per thread shard, made on that thread's first record; its thread is
    /// its only writer, so recording is a plain load and store.
    shards: [OnceLock<Counts>; SHARDS],
    /// What [`Histogram::reset`] subtracts: the totals when it was last called (a reset cannot
    /// store zeros into buckets that other threads write without read-modify-write).
    baseline: OnceLock<Counts>,
    rejected: AtomicU64,
}

fn zeroed() -> Counts {
    let counts: Box<[AtomicU64]> = (0..BUCKETS).map(|_| AtomicU64::new(0)).collect();
    counts.try_into().expect("BUCKETS counts")
}

impl HistogramCell {
    fn new() -> Self {
        Self {
            buckets: zeroed(),
            shards: std::array::from_fn(|_| OnceLock::new()),
            baseline: OnceLock::new(),
            rejected: AtomicU64::new(0),
        }
    }

    #[inline]
    fn add(&self, index: usize, n: u64) {
        // One test for the common case: a thread with a shard whose buckets exist.
        let shard = current_shard();
        if shard < SHARDS
            && let Some(buckets) = self.shards[shard].get()
        {
            // This thread is the only writer of its shard, so load + store loses nothing.
            let b = &buckets[index];
            b.store(b.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        } else {
            self.add_slow(index, n);
        }
    }

    /// A thread's first record: claims a shard and makes its buckets, or adds to the shared
    /// ones.
    #[cold]
    fn add_slow(&self, index: usize, n: u64) {
        let shard = thread_shard();
        if shard < SHARDS {
            let b = &self.shards[shard].get_or_init(zeroed)[index];
            b.store(b.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        } else {
            self.buckets[index].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Every bucket's total over the shared buckets and the shards, before the baseline.
    fn totals(&self) -> Vec<u64> {
        let mut counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        for shard in self.shards.iter().filter_map(OnceLock::get) {
            for (c, b) in counts.iter_mut().zip(shard.iter()) {
                *c = c.wrapping_add(b.load(Ordering::Relaxed));
            }
        }
        counts
    }

    /// The counts recorded since the last reset.
    fn counts(&self) -> Vec<u64> {
        let mut counts = self.totals();
        if let Some(base) = self.baseline.get() {
            for (c, b) in counts.iter_mut().zip(base.iter()) {
                *c = c.wrapping_sub(b.load(Ordering::Relaxed));
            }
        }
        counts
    }
}

/// A handle to a lock-free log-linear histogram. Cloning it is cheap and every clone records
/// into the same buckets.
///
/// Percentiles, minimum, maximum, sum and mean are within 1% of the exact figures for values
/// up to [`MAX_TRACKED`]; counts are exact. See the [module docs](self) for the layout.
///
/// ```
/// use mpm_metrics::Histogram;
///
/// let latency = Histogram::new();
/// for v in 1..=1000 {
///     latency.record(v);
/// }
/// let snap = latency.snapshot();
/// assert_eq!(snap.count, 1000);
/// assert!((snap.p50 - 500.0).abs() <= 5.0);
/// ```
#[derive(Clone)]
pub struct Histogram {
    cell: Arc<HistogramCell>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.snapshot();
        f.debug_struct("Histogram")
            .field("count", &s.count)
            .field("p50", &s.p50)
            .field("p99", &s.p99)
            .finish()
    }
}

impl Histogram {
    /// A new histogram not attached to any registry. Besides this allocation, the first
    /// record from each thread allocates that thread's buckets (16,016 bytes) once.
    pub fn new() -> Self {
        Self {
            cell: Arc::new(HistogramCell::new()),
        }
    }

    /// Records one value. Lock-free; allocation-free after the thread's first record.
    #[inline]
    pub fn record(&self, value: u64) {
        self.cell.add(bucket_index(value), 1);
    }

    /// Records `count` occurrences of one value.
    #[inline]
    pub fn record_n(&self, value: u64, count: u64) {
        self.cell.add(bucket_index(value), count);
    }

    /// Records a duration in nanoseconds (saturating at [`MAX_TRACKED`] nanoseconds).
    #[inline]
    pub fn record_duration(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.record(nanos);
    }

    /// Records a floating-point value, rounded to the nearest integer. NaN, infinite and
    /// negative values are not recorded: they are counted in
    /// [`HistogramSnapshot::rejected`] and `false` is returned.
    #[inline]
    pub fn record_f64(&self, value: f64) -> bool {
        if value.is_finite() && value >= 0.0 {
            // `as` saturates for values above u64::MAX.
            self.record(value.round() as u64);
            true
        } else {
            self.cell.rejected.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Adds every count of `other` into `self`. Histograms share one layout, so merging is
    /// exact.
    pub fn merge_from(&self, other: &Histogram) {
        for (mine, n) in self.cell.buckets.iter().zip(other.cell.counts()) {
            if n != 0 {
                mine.fetch_add(n, Ordering::Relaxed);
            }
        }
        let r = other.cell.rejected.load(Ordering::Relaxed);
        self.cell.rejected.fetch_add(r, Ordering::Relaxed);
    }

    /// Sets every count back to zero (a value recorded by another thread while this runs may
    /// be kept or dropped).
    pub fn reset(&self) {
        let totals = self.cell.totals();
        let base = self.cell.baseline.get_or_init(zeroed);
        for (b, t) in base.iter().zip(totals) {
            b.store(t, Ordering::Relaxed);
        }
        self.cell.rejected.store(0, Ordering::Relaxed);
    }

    /// Whether two handles record into the same histogram.
    pub fn same_as(&self, other: &Histogram) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }

    /// Reads the buckets once and computes the summary statistics.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let counts = self.cell.counts();
        HistogramSnapshot::from_counts(&counts, self.cell.rejected.load(Ordering::Relaxed))
    }
}

/// What a [`Histogram`] held when it was read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistogramSnapshot {
    /// How many values were recorded (exact).
    pub count: u64,
    /// The sum of the values (within 1%).
    pub sum: f64,
    /// The mean, `sum / count`, or 0 when empty.
    pub mean: f64,
    /// The smallest value (within 1%), or 0 when empty.
    pub min: f64,
    /// The largest value (within 1%), or 0 when empty.
    pub max: f64,
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The 99.9th percentile.
    pub p999: f64,
    /// Values refused by [`Histogram::record_f64`] (NaN, infinite or negative).
    #[serde(skip_serializing_if = "is_zero")]
    pub rejected: u64,
    /// The non-empty buckets, as `(bucket_index, count)`, for exact quantiles.
    #[serde(skip)]
    pub(crate) nonzero: Vec<(u32, u64)>,
    /// What recorded values are divided by to give reported ones.
    #[serde(skip)]
    pub(crate) divisor: f64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl HistogramSnapshot {
    fn from_counts(counts: &[u64], rejected: u64) -> Self {
        let nonzero: Vec<(u32, u64)> = counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != 0)
            .map(|(i, c)| (i as u32, *c))
            .collect();
        let count: u64 = nonzero.iter().map(|(_, c)| c).sum();
        // A fold from +0.0: `Sum` for f64 starts at -0.0, which renders as "-0.0".
        let sum: f64 = nonzero.iter().fold(0.0, |acc, (i, c)| {
            acc + bucket_value(*i as usize) * *c as f64
        });
        let mut snap = HistogramSnapshot {
            count,
            sum,
            mean: if count == 0 { 0.0 } else { sum / count as f64 },
            min: nonzero
                .first()
                .map_or(0.0, |(i, _)| bucket_value(*i as usize)),
            max: nonzero
                .last()
                .map_or(0.0, |(i, _)| bucket_value(*i as usize)),
            p50: 0.0,
            p90: 0.0,
            p99: 0.0,
            p999: 0.0,
            rejected,
            nonzero,
            divisor: 1.0,
        };
        snap.p50 = snap.quantile(0.5);
        snap.p90 = snap.quantile(0.9);
        snap.p99 = snap.quantile(0.99);
        snap.p999 = snap.quantile(0.999);
        #[cfg(feature = "strict-assertions")]
        snap.check_invariants();
        snap
    }

    /// Expensive consistency checks, on with the `strict-assertions` feature.
    #[cfg(feature = "strict-assertions")]
    fn check_invariants(&self) {
        let qs = [self.min, self.p50, self.p90, self.p99, self.p999, self.max];
        assert!(
            qs.windows(2).all(|w| w[0] <= w[1]),
            "quantiles out of order: {qs:?}"
        );
        let all = self.cumulative_at([f64::INFINITY]);
        assert_eq!(all, [self.count], "every value lies below +Inf");
    }

    /// The value at quantile `q` (0 to 1), in the reported unit: the smallest recorded value (within 1%) that at
    /// least `q * count` values do not exceed. 0 when the histogram is empty; `q` is clamped
    /// into `0..=1` and NaN counts as 0.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (i, c) in &self.nonzero {
            seen += c;
            if seen >= rank {
                return bucket_value(*i as usize) / self.divisor;
            }
        }
        self.max
    }

    /// The same statistics divided by `divisor` (counts unchanged): how a [`Unit`] turns
    /// recorded nanoseconds into reported seconds.
    ///
    /// [`Unit`]: crate::Unit
    pub(crate) fn scaled(mut self, divisor: f64) -> Self {
        if divisor != 1.0 {
            for v in [
                &mut self.sum,
                &mut self.mean,
                &mut self.min,
                &mut self.max,
                &mut self.p50,
                &mut self.p90,
                &mut self.p99,
                &mut self.p999,
            ] {
                *v /= divisor;
            }
            self.divisor = divisor;
        }
        self
    }

    /// The cumulative count at each bound (in recorded units, ascending): how many values
    /// lie in buckets whose reported value (the midpoint) is at most the bound. Exact for
    /// every value farther than 1% from a bound.
    pub(crate) fn cumulative_at(&self, bounds: impl IntoIterator<Item = f64>) -> Vec<u64> {
        let mut it = self.nonzero.iter().peekable();
        let mut seen = 0u64;
        bounds
            .into_iter()
            .map(|bound| {
                while let Some((i, c)) = it.peek() {
                    if bucket_value(*i as usize) <= bound {
                        seen += c;
                        it.next();
                    } else {
                        break;
                    }
                }
                seen
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        let mut expected_lo = 0u64;
        for i in 0..BUCKETS {
            let (lo, hi) = bucket_bounds(i);
            assert_eq!(lo, expected_lo, "bucket {i}");
            assert!(hi >= lo, "bucket {i} is empty");
            assert_eq!(bucket_index(lo), i);
            assert_eq!(bucket_index(hi), i);
            let err = (hi - lo) as f64 / 2.0 / lo.max(1) as f64;
            assert!(err < 0.01, "bucket {i} [{lo}, {hi}] has error {err}");
            expected_lo = hi + 1;
        }
        assert_eq!(expected_lo, MAX_TRACKED + 1);
    }

    /// The index as first written, with a branch: the reference for the branch-free one.
    fn bucket_index_reference(value: u64) -> usize {
        if value < EXACT {
            return value as usize;
        }
        let value = value.min(MAX_TRACKED);
        let k = 63 - value.leading_zeros();
        let sub = ((value - (1u64 << k)) * SUB_BUCKETS) >> k;
        (EXACT + (k - FIRST_OCTAVE) as u64 * SUB_BUCKETS + sub) as usize
    }

    #[test]
    fn the_branch_free_index_is_the_reference_one() {
        let mut values: Vec<u64> = (0..4096).collect();
        for k in 0..64 {
            let p = 1u64 << k;
            values.extend([p - 1, p, p + 1, p.wrapping_mul(3) / 2]);
        }
        for i in 0..BUCKETS {
            let (lo, hi) = bucket_bounds(i);
            values.extend([lo.saturating_sub(1), lo, hi, hi + 1]);
        }
        values.extend([MAX_TRACKED, MAX_TRACKED + 1, u64::MAX - 1, u64::MAX]);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 64));
        }
        for v in values {
            assert_eq!(bucket_index(v), bucket_index_reference(v), "value {v}");
        }
    }

    #[test]
    fn a_histogram_is_one_set_of_buckets_plus_one_per_recording_thread() {
        assert_eq!(BUCKETS * std::mem::size_of::<AtomicU64>(), 16_016);
        let bytes = BUCKETS * std::mem::size_of::<AtomicU64>()
            + std::mem::size_of::<HistogramCell>()
            + 2 * std::mem::size_of::<usize>();
        assert!(bytes <= 16 * 1024 + 512, "{bytes} bytes");
        let h = Histogram::new();
        assert_eq!(
            h.cell.shards.iter().filter(|s| s.get().is_some()).count(),
            0
        );
        h.record(1);
        std::thread::scope(|s| {
            s.spawn(|| h.record(2));
        });
        let made = h.cell.shards.iter().filter(|s| s.get().is_some()).count();
        // One per recording thread (a thread beyond the shards would use the shared buckets).
        assert!((1..=2).contains(&made), "{made} shards");
        assert_eq!(h.snapshot().count, 2);
    }

    #[test]
    fn reset_and_merge_see_every_thread() {
        let h = Histogram::new();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let h = &h;
                s.spawn(move || {
                    for v in 0..1_000 {
                        h.record(v + t);
                    }
                });
            }
        });
        assert_eq!(h.snapshot().count, 4_000);
        let other = Histogram::new();
        other.merge_from(&h);
        assert_eq!(other.snapshot(), h.snapshot());
        h.reset();
        assert_eq!(h.snapshot().count, 0);
        h.record(7);
        std::thread::scope(|s| {
            s.spawn(|| h.record(7));
        });
        let snap = h.snapshot();
        assert_eq!((snap.count, snap.min, snap.max), (2, 7.0, 7.0));
        assert_eq!(other.snapshot().count, 4_000);
    }
}
