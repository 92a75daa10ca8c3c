//! `DiskTier::put` with its write-behind buffer (the default) beside the same tier committing
//! one redb transaction per write (`WriteBehind::off()`, what every put cost before the
//! buffer): what an L2 write costs the caller of a `TieredCache`. `disk_put` writes back to
//! back (the background writer's throughput bounds the buffered tier); `disk_put_spaced`
//! times each write alone, 20 µs of other work apart (a cache miss's load, as in `mpm demo`).

// criterion's macros generate public functions without docs.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mpm_cache::{DiskTier, WriteBehind};

/// Distinct keys written in turn (the demo's profile count).
const KEYS: usize = 10_000;

/// A profile-sized value (about 600 bytes).
fn profile(i: usize) -> String {
    format!("{i:08}:{}", "agent profile body ".repeat(32))
}

/// The keys and values written in turn.
fn workload() -> (Vec<String>, Vec<String>) {
    let keys = (0..KEYS).map(|i| format!("agent_profile:{i:08}")).collect();
    let values = (0..KEYS).map(profile).collect();
    (keys, values)
}

/// Each tier under test, by name, in a temporary directory of its own (removed on drop).
fn tiers() -> Vec<(&'static str, tempfile::TempDir, DiskTier<String>)> {
    [
        ("mpm_write_behind", WriteBehind::default()),
        ("mpm_commit_per_put", WriteBehind::off()),
    ]
    .into_iter()
    .map(|(name, w)| {
        let dir = tempfile::tempdir().unwrap();
        let disk = DiskTier::builder(dir.path())
            .write_behind(w)
            .open()
            .unwrap();
        (name, dir, disk)
    })
    .collect()
}

/// Writes the next key in turn.
fn put_next(disk: &DiskTier<String>, (keys, values): &(Vec<String>, Vec<String>), i: &mut usize) {
    *i = (*i + 1) % KEYS;
    disk.put(
        black_box(&keys[*i]),
        &values[*i],
        Some(Duration::from_secs(3600)),
        &[],
    )
    .unwrap();
}

fn put(c: &mut Criterion) {
    let mut g = c.benchmark_group("disk_put");
    let work = workload();
    for (name, _dir, disk) in tiers() {
        let mut i = 0usize;
        g.bench_function(name, |b| b.iter(|| put_next(&disk, &work, &mut i)));
        disk.flush().unwrap();
    }
    g.finish();
}

/// Busy work standing for a load between two writes.
fn busy(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn put_spaced(c: &mut Criterion) {
    let mut g = c.benchmark_group("disk_put_spaced");
    let work = workload();
    for (name, _dir, disk) in tiers() {
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    busy(Duration::from_micros(20));
                    let t = Instant::now();
                    put_next(&disk, &work, &mut i);
                    timed += t.elapsed();
                }
                timed
            })
        });
        disk.flush().unwrap();
    }
    g.finish();
}

criterion_group!(benches, put, put_spaced);
criterion_main!(benches);
