//! mpm-cache beside quick_cache and moka (and `std::fs::read` for the disk tier).

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mpm_cache::MemoryTier;

const ENTRIES: u64 = 10_000;
const HOT: u64 = 1_024;

/// L1 hot get: a resident key, single thread, TTL on for mpm (default TTL 300 s).
fn hot_get(c: &mut Criterion) {
    let mut g = c.benchmark_group("l1_hot_get");
    let ours: MemoryTier<u64, u64> = MemoryTier::builder()
        .max_entries(NonZeroUsize::new(ENTRIES as usize).unwrap())
        .default_ttl(Some(Duration::from_secs(300)))
        .build()
        .unwrap();
    let qc: quick_cache::sync::Cache<u64, u64> = quick_cache::sync::Cache::new(ENTRIES as usize);
    let moka: moka::sync::Cache<u64, u64> = moka::sync::Cache::builder()
        .max_capacity(ENTRIES)
        .time_to_live(Duration::from_secs(300))
        .build();
    for k in 0..HOT {
        ours.insert(k, k);
        qc.insert(k, k);
        moka.insert(k, k);
    }
    moka.run_pending_tasks();
    let mut i = 0u64;
    g.bench_function("mpm", |b| {
        b.iter(|| {
            i = (i + 1) & (HOT - 1);
            black_box(ours.get(black_box(&i)))
        })
    });
    g.bench_function("quick_cache", |b| {
        b.iter(|| {
            i = (i + 1) & (HOT - 1);
            black_box(qc.get(black_box(&i)))
        })
    });
    g.bench_function("moka", |b| {
        b.iter(|| {
            i = (i + 1) & (HOT - 1);
            black_box(moka.get(black_box(&i)))
        })
    });
    g.finish();
}

/// L1 insert of a fresh key into a full cache (one eviction per insert).
fn insert(c: &mut Criterion) {
    let mut g = c.benchmark_group("l1_insert_evict");
    let ours: MemoryTier<u64, u64> = MemoryTier::builder()
        .max_entries(NonZeroUsize::new(ENTRIES as usize).unwrap())
        .default_ttl(Some(Duration::from_secs(300)))
        .build()
        .unwrap();
    let qc: quick_cache::sync::Cache<u64, u64> = quick_cache::sync::Cache::new(ENTRIES as usize);
    let mut k = 0u64;
    g.bench_function("mpm", |b| {
        b.iter(|| {
            k += 1;
            ours.insert(black_box(k), k);
        })
    });
    g.bench_function("quick_cache", |b| {
        b.iter(|| {
            k += 1;
            qc.insert(black_box(k), k);
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = hot_get, insert
}
criterion_main!(benches);
