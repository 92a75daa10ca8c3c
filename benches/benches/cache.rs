//! mpm-cache beside quick_cache and moka (and `std::fs::read` for the disk tier).

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mpm_cache::{EntryOptions, MemoryTier, TieredCache};

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

const BIG: usize = 1_000_000;
const HIT: usize = 1_000;

/// Invalidating 1,000 tagged or prefixed entries among 1,000,000. moka has no index: its
/// `invalidate_entries_if` runs a predicate over every entry (measured to completion with
/// `run_pending_tasks`).
fn invalidate(c: &mut Criterion) {
    let mut g = c.benchmark_group("invalidate_1k_of_1m");
    g.sample_size(10);
    let ours: TieredCache<u64> = TieredCache::builder()
        .max_entries(NonZeroUsize::new(BIG + 2 * HIT).unwrap())
        .build()
        .unwrap();
    for i in 0..BIG {
        ours.insert(&format!("cold:{i:07}"), i as u64);
    }
    let refill = |ours: &TieredCache<u64>| {
        for i in 0..HIT {
            ours.insert_with(
                &format!("agent:7:{i:04}"),
                i as u64,
                EntryOptions::new().tag("agent:7"),
            );
        }
    };
    g.bench_function("mpm_prefix", |b| {
        b.iter_batched(
            || refill(&ours),
            |()| assert_eq!(ours.invalidate_prefix("agent:7:"), HIT),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("mpm_tag", |b| {
        b.iter_batched(
            || refill(&ours),
            |()| assert_eq!(ours.invalidate_tag("agent:7"), HIT),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("mpm_glob_scan_prefix", |b| {
        b.iter_batched(
            || refill(&ours),
            |()| {
                assert_eq!(
                    ours.invalidate_pattern("agent:7:0[0-9]?[0-9]").unwrap(),
                    HIT
                )
            },
            BatchSize::PerIteration,
        )
    });
    drop(ours);
    let moka: moka::sync::Cache<String, u64> = moka::sync::Cache::builder()
        .max_capacity((BIG + 2 * HIT) as u64)
        .support_invalidation_closures()
        .build();
    for i in 0..BIG {
        moka.insert(format!("cold:{i:07}"), i as u64);
    }
    g.bench_function("moka_predicate", |b| {
        b.iter_batched(
            || {
                for i in 0..HIT {
                    moka.insert(format!("agent:7:{i:04}"), i as u64);
                }
                moka.run_pending_tasks();
            },
            |()| {
                moka.invalidate_entries_if(|k, _| k.starts_with("agent:7:"))
                    .unwrap();
                moka.run_pending_tasks();
            },
            BatchSize::PerIteration,
        )
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
    targets = hot_get, insert, invalidate
}
criterion_main!(benches);
