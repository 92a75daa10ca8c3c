//! The per-operation cost of the adaptive L1 policy prototype (xtask's `policy` module, the one
//! `cargo xtask trace` measures) beside bare quick_cache with the same options.

// criterion's macros generate public functions without docs.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../../xtask/src/policy/mod.rs"]
#[allow(dead_code, unreachable_pub, unused_imports)]
mod policy;

const ENTRIES: usize = 10_000;
const HOT: u64 = 1_024;

fn quick_cache_like_the_prototype()
-> quick_cache::unsync::Cache<u64, (), quick_cache::UnitWeighter, policy::Fixed> {
    let c = policy::Config::default();
    let mut opts = quick_cache::OptionsBuilder::new();
    opts.estimated_items_capacity(ENTRIES)
        .weight_capacity(ENTRIES as u64)
        .hot_allocation(c.hot_allocation)
        .ghost_allocation(c.ghost_allocation);
    quick_cache::unsync::Cache::with_options(
        opts.build().unwrap(),
        quick_cache::UnitWeighter,
        Default::default(),
        Default::default(),
    )
}

/// A miss into a full cache: look up, then insert (one eviction), single thread.
fn insert_evict(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy_insert_evict");
    let mut ours = policy::Adaptive::new(ENTRIES, policy::Config::default());
    let mut qc = quick_cache_like_the_prototype();
    for k in 0..ENTRIES as u64 * 2 {
        ours.access(k);
        let _ = qc.get(&k).is_some() || {
            qc.insert(k, ());
            false
        };
    }
    let mut next = 1u64 << 32;
    g.bench_function("adaptive", |b| {
        b.iter(|| {
            next += 1;
            black_box(ours.access(black_box(next)))
        })
    });
    let mut next = 1u64 << 32;
    g.bench_function("quick_cache", |b| {
        b.iter(|| {
            next += 1;
            let k = black_box(next);
            let hit = qc.get(&k).is_some();
            if !hit {
                qc.insert(k, ());
            }
            black_box(hit)
        })
    });
    g.finish();
}

/// A hit on a resident key, single thread.
fn hot_get(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy_hot_get");
    let mut ours = policy::Adaptive::new(ENTRIES, policy::Config::default());
    let mut qc = quick_cache_like_the_prototype();
    for k in 0..HOT {
        ours.access(k);
        qc.insert(k, ());
    }
    let mut i = 0u64;
    g.bench_function("adaptive", |b| {
        b.iter(|| {
            i = (i + 1) & (HOT - 1);
            black_box(ours.access(black_box(i)))
        })
    });
    g.bench_function("quick_cache", |b| {
        b.iter(|| {
            i = (i + 1) & (HOT - 1);
            black_box(qc.get(black_box(&i)).is_some())
        })
    });
    g.finish();
}

criterion_group!(benches, insert_evict, hot_get);
criterion_main!(benches);
