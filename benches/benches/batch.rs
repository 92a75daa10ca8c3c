//! mpm-batch beside what a Tokio user would write by hand, on a 2-worker Tokio runtime.
//!
//! - `run_bounded_<kind>/<limit>`: 10,000 trivial async jobs (`ready`: done on their first
//!   poll; `yield`: one `yield_now` first), every result back in input order. Ours
//!   (`run_bounded`) beside `futures::stream::iter(..).buffer_unordered(limit)` plus a sort
//!   back into input order, and beside a `JoinSet` with a `Semaphore` of `limit` permits
//!   plus the same sort.
//! - `batcher/<producers>x<items>`: producer tasks push items into batches of 10 (or 50 ms);
//!   one element is one item handed to the consumer. Ours (`Batcher`, `Overflow::Wait`)
//!   beside a hand loop: a bounded `mpsc` channel of the same capacity, and a consumer that
//!   fills each batch with `tokio::time::timeout(remaining, rx.recv())`.

// criterion's macros generate public functions without docs.
#![allow(missing_docs)]

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use mpm_batch::{Batch, Batcher, Overflow, run_bounded};
use tokio::runtime::Runtime;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

const JOBS: u64 = 10_000;
const LIMITS: [usize; 3] = [5, 64, 1024];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("positive")
}

/// One trivial job: `i * 2`, after one `yield_now` if `yields`.
async fn job(i: u64, yields: bool) -> Result<u64, ()> {
    if yields {
        tokio::task::yield_now().await;
    }
    Ok(black_box(i) * 2)
}

async fn ours(limit: usize, yields: bool) -> usize {
    let results = run_bounded(0..JOBS, nz(limit), |i| job(i, yields)).await;
    results.len()
}

async fn buffer_unordered(limit: usize, yields: bool) -> usize {
    let mut results: Vec<(u64, Result<u64, ()>)> = futures::stream::iter(0..JOBS)
        .map(|i| async move { (i, job(i, yields).await) })
        .buffer_unordered(limit)
        .collect()
        .await;
    results.sort_unstable_by_key(|(i, _)| *i);
    results.len()
}

async fn join_set(limit: usize, yields: bool) -> usize {
    let permits = Arc::new(Semaphore::new(limit));
    let mut set = JoinSet::new();
    let mut results = Vec::with_capacity(JOBS as usize);
    for i in 0..JOBS {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("never closed");
        set.spawn(async move {
            let _permit = permit;
            (i, job(i, yields).await)
        });
        while let Some(done) = set.try_join_next() {
            results.push(done.expect("no panics"));
        }
    }
    while let Some(done) = set.join_next().await {
        results.push(done.expect("no panics"));
    }
    results.sort_unstable_by_key(|(i, _)| *i);
    results.len()
}

fn run_bounded_groups(c: &mut Criterion) {
    let rt = runtime();
    for (kind, yields) in [("ready", false), ("yield", true)] {
        let mut group = c.benchmark_group(format!("run_bounded_{kind}"));
        group.throughput(Throughput::Elements(JOBS));
        for limit in LIMITS {
            group.bench_with_input(BenchmarkId::new("mpm", limit), &limit, |b, &limit| {
                b.iter(|| assert_eq!(rt.block_on(ours(limit, yields)), JOBS as usize));
            });
            group.bench_with_input(
                BenchmarkId::new("buffer_unordered", limit),
                &limit,
                |b, &limit| {
                    b.iter(|| {
                        assert_eq!(rt.block_on(buffer_unordered(limit, yields)), JOBS as usize)
                    });
                },
            );
            group.bench_with_input(
                BenchmarkId::new("joinset_semaphore", limit),
                &limit,
                |b, &limit| {
                    b.iter(|| assert_eq!(rt.block_on(join_set(limit, yields)), JOBS as usize));
                },
            );
        }
        group.finish();
    }
}

const PRODUCERS: u64 = 4;
const ITEMS: u64 = 20_000;
const BATCH: usize = 10;
const DELAY: Duration = Duration::from_millis(50);
const CAPACITY: usize = 1024;

/// Four producers push `ITEMS` each through our batcher; returns the items delivered.
async fn batcher() -> u64 {
    let delivered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let batcher = {
        let delivered = Arc::clone(&delivered);
        Batcher::builder(nz(CAPACITY), Overflow::Wait)
            .max_items(nz(BATCH))
            .max_delay(DELAY)
            .build(move |batch: Batch<(), u64>| {
                delivered.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
                std::future::ready(Ok::<_, String>(()))
            })
            .expect("a batcher")
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let batcher = batcher.clone();
            tokio::spawn(async move {
                for i in 0..ITEMS {
                    batcher.push((), p * ITEMS + i).await.expect("open");
                }
            })
        })
        .collect();
    for p in producers {
        p.await.expect("no panics");
    }
    batcher.shutdown().await.expect("shut down");
    delivered.load(std::sync::atomic::Ordering::Relaxed)
}

/// The same through a bounded `mpsc` channel and a `timeout` loop.
async fn mpsc_timeout() -> u64 {
    let (tx, mut rx) = mpsc::channel::<u64>(CAPACITY);
    let consumer = tokio::spawn(async move {
        let mut delivered = 0u64;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(first) = rx.recv().await {
            batch.push(first);
            let deadline = tokio::time::Instant::now() + DELAY;
            let mut open = true;
            while batch.len() < BATCH {
                let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                match tokio::time::timeout(remaining, rx.recv()).await {
                    Ok(Some(item)) => batch.push(item),
                    Ok(None) => {
                        open = false;
                        break;
                    }
                    Err(_) => break,
                }
            }
            delivered += black_box(std::mem::take(&mut batch)).len() as u64;
            if !open {
                break;
            }
        }
        delivered
    });
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in 0..ITEMS {
                    tx.send(p * ITEMS + i).await.expect("open");
                }
            })
        })
        .collect();
    drop(tx);
    for p in producers {
        p.await.expect("no panics");
    }
    consumer.await.expect("no panics")
}

fn batcher_group(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("batcher");
    group.throughput(Throughput::Elements(PRODUCERS * ITEMS));
    let id = format!("{PRODUCERS}x{ITEMS}");
    group.bench_function(BenchmarkId::new("mpm", &id), |b| {
        b.iter(|| assert_eq!(rt.block_on(batcher()), PRODUCERS * ITEMS));
    });
    group.bench_function(BenchmarkId::new("mpsc_timeout", &id), |b| {
        b.iter(|| assert_eq!(rt.block_on(mpsc_timeout()), PRODUCERS * ITEMS));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = run_bounded_groups, batcher_group
}
criterion_main!(benches);
