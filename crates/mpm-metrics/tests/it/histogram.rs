//! Percentiles against an exact sorted-array oracle, concurrency, merging.

use std::sync::Arc;

use mpm_metrics::Histogram;
use mpm_metrics::histogram::MAX_TRACKED;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The oracle's value at quantile `q`: the smallest value that at least `q * n` values do not
/// exceed.
fn oracle(sorted: &[u64], q: f64) -> f64 {
    let n = sorted.len() as u64;
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
    sorted[rank as usize - 1] as f64
}

#[track_caller]
fn check_percentiles(name: &str, values: Vec<u64>) {
    let h = Histogram::new();
    for v in &values {
        h.record(*v);
    }
    let mut sorted = values;
    sorted.sort_unstable();
    let snap = h.snapshot();
    assert_eq!(snap.count, sorted.len() as u64, "{name}: count");
    let figures = [
        ("p50", 0.5, snap.p50),
        ("p90", 0.9, snap.p90),
        ("p99", 0.99, snap.p99),
        ("p99.9", 0.999, snap.p999),
        ("max", 1.0, snap.max),
    ];
    for (label, q, got) in figures {
        let want = oracle(&sorted, q);
        let err = (got - want).abs() / want.max(1.0);
        assert!(
            err <= 0.01,
            "{name} {label}: got {got}, exact {want}, relative error {err:.5}"
        );
    }
    let min = *sorted.first().unwrap() as f64;
    assert!((snap.min - min).abs() / min.max(1.0) <= 0.01, "{name}: min");
    let exact_sum: f64 = sorted.iter().map(|v| *v as f64).sum();
    assert!(
        (snap.sum - exact_sum).abs() / exact_sum.max(1.0) <= 0.01,
        "{name}: sum {} vs {exact_sum}",
        snap.sum
    );
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[test]
fn uniform_nanoseconds_to_one_hour() {
    let mut r = rng(1);
    check_percentiles(
        "uniform",
        (0..100_000)
            .map(|_| r.gen_range(1..=3_600_000_000_000u64))
            .collect(),
    );
}

#[test]
fn log_uniform_over_twelve_decades() {
    let mut r = rng(2);
    check_percentiles(
        "log-uniform",
        (0..100_000)
            .map(|_| 10f64.powf(r.gen_range(0.0..12.5)) as u64)
            .collect(),
    );
}

#[test]
fn exponential_latencies() {
    let mut r = rng(3);
    check_percentiles(
        "exponential",
        (0..100_000)
            .map(|_| (-(1.0 - r.gen_range(0.0..1.0f64)).ln() * 250_000.0) as u64 + 1)
            .collect(),
    );
}

#[test]
fn heavy_tailed_pareto() {
    let mut r = rng(4);
    check_percentiles(
        "pareto",
        (0..100_000)
            .map(|_| (1000.0 / (1.0 - r.gen_range(0.0..1.0f64)).powf(1.0 / 1.2)) as u64)
            .collect(),
    );
}

#[test]
fn bimodal_cache_hits_and_misses() {
    let mut r = rng(5);
    check_percentiles(
        "bimodal",
        (0..50_000)
            .map(|_| {
                if r.gen_bool(0.9) {
                    r.gen_range(20..60)
                } else {
                    r.gen_range(40_000..120_000)
                }
            })
            .collect(),
    );
}

#[test]
fn small_exact_values_and_a_single_value() {
    check_percentiles("small", (0..64).chain(0..64).collect());
    check_percentiles("one", vec![123_456_789]);
    check_percentiles("one hour", vec![3_600_000_000_000; 3]);
}

#[test]
fn an_empty_histogram_reports_zeros() {
    let snap = Histogram::new().snapshot();
    assert_eq!(snap.count, 0);
    assert_eq!((snap.p50, snap.max, snap.mean), (0.0, 0.0, 0.0));
}

#[test]
fn values_past_the_range_saturate_without_panicking() {
    let h = Histogram::new();
    h.record(u64::MAX);
    h.record(MAX_TRACKED + 1);
    let snap = h.snapshot();
    assert_eq!(snap.count, 2);
    assert!(snap.max <= MAX_TRACKED as f64 && snap.max >= MAX_TRACKED as f64 * 0.99);
}

#[test]
fn many_threads_recording_at_once_give_exact_counts() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 50_000;
    let h = Histogram::new();
    let start = Arc::new(std::sync::Barrier::new(THREADS as usize));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let h = h.clone();
            let start = start.clone();
            s.spawn(move || {
                start.wait();
                for i in 0..PER_THREAD {
                    // Every thread also hits one shared bucket, the contended case.
                    h.record(if i % 2 == 0 { 1000 } else { t * 1_000_000 + i });
                }
            });
        }
    });
    let snap = h.snapshot();
    assert_eq!(snap.count, THREADS * PER_THREAD);
    assert!((snap.quantile(0.5) - 1000.0).abs() <= 10.0);
}

#[test]
fn merging_equals_recording_into_one() {
    let mut r = rng(6);
    let values: Vec<u64> = (0..10_000).map(|_| r.gen_range(1..10_000_000)).collect();
    let (a, b, all) = (Histogram::new(), Histogram::new(), Histogram::new());
    for (i, v) in values.iter().enumerate() {
        if i % 3 == 0 { &a } else { &b }.record(*v);
        all.record(*v);
    }
    a.merge_from(&b);
    assert_eq!(a.snapshot(), all.snapshot());
}

#[test]
fn float_values_refuse_nan_infinity_and_negatives() {
    let h = Histogram::new();
    assert!(h.record_f64(12.4));
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0] {
        assert!(!h.record_f64(bad), "{bad} was accepted");
    }
    let snap = h.snapshot();
    assert_eq!((snap.count, snap.rejected), (1, 4));
    assert_eq!(snap.p50, 12.0);
}

#[test]
fn reset_empties_the_histogram() {
    let h = Histogram::new();
    h.record_n(77, 5);
    h.reset();
    assert_eq!(h.snapshot().count, 0);
}
