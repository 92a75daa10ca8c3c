//! mpm-memory-opt beside a brute-force all-pairs version of itself (same stages, same metric,
//! no candidate pruning). The Python optimizer (claude-mpm v4.0.29) cannot run inside criterion
//! and is not timed here.

// criterion's macros generate public functions without docs.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mpm_memory_opt::generator::{Spec, generate};
use mpm_memory_opt::{Difflib, Optimizer, Options, Similarity};

fn file(bytes: usize) -> String {
    generate(Spec {
        target_bytes: bytes,
        duplicate_share: 0.2,
        seed: 42,
    })
    .text
}

fn default_profile(c: &mut Criterion, name: &str, bytes: usize, all_pairs: bool, one_thread: bool) {
    let text = file(bytes);
    let mut g = c.benchmark_group(name);
    let ours = Optimizer::new(Options::default());
    g.bench_function("mpm", |b| {
        b.iter(|| black_box(ours.optimize_text(black_box(&text))))
    });
    if one_thread {
        // Sections with 50,000 pairs or more are split over threads by default; this row pins
        // the work to the calling thread.
        let single = Optimizer::new(Options {
            threads: 1,
            ..Options::default()
        });
        g.bench_function("mpm_one_thread", |b| {
            b.iter(|| black_box(single.optimize_text(black_box(&text))))
        });
    }
    if all_pairs {
        let brute = Optimizer::new(Options {
            prune: false,
            ..Options::default()
        });
        g.bench_function("all_pairs", |b| {
            b.iter(|| black_box(brute.optimize_text(black_box(&text))))
        });
    }
    g.finish();
}

fn default_80kb(c: &mut Criterion) {
    default_profile(c, "default_profile_80kb", 80 * 1024, true, false);
}

fn default_1mb(c: &mut Criterion) {
    default_profile(c, "default_profile_1mb", 1024 * 1024, true, true);
}

fn default_difflib_80kb(c: &mut Criterion) {
    let text = file(80 * 1024);
    let mut g = c.benchmark_group("default_profile_difflib_80kb");
    let metric: Arc<dyn Similarity> = Arc::new(Difflib);
    let ours = Optimizer::new(Options {
        metric: metric.clone(),
        ..Options::default()
    });
    g.bench_function("mpm", |b| {
        b.iter(|| black_box(ours.optimize_text(black_box(&text))))
    });
    let brute = Optimizer::new(Options {
        metric,
        prune: false,
        ..Options::default()
    });
    g.bench_function("all_pairs", |b| {
        b.iter(|| black_box(brute.optimize_text(black_box(&text))))
    });
    g.finish();
}

fn claude_mpm_80kb(c: &mut Criterion) {
    let text = file(80 * 1024);
    let mut g = c.benchmark_group("claude_mpm_profile_80kb");
    let opts = Options {
        timestamp: Some("2026-01-01 00:00:00".to_owned()),
        ..Options::claude_mpm()
    };
    let ours = Optimizer::new(opts.clone());
    g.bench_function("mpm", |b| {
        b.iter(|| black_box(ours.optimize_text(black_box(&text))))
    });
    let brute = Optimizer::new(Options {
        prune: false,
        ..opts
    });
    g.bench_function("all_pairs", |b| {
        b.iter(|| black_box(brute.optimize_text(black_box(&text))))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = default_80kb, default_1mb, default_difflib_80kb, claude_mpm_80kb
}
criterion_main!(benches);
