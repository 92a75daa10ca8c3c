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

/// A temporary directory, removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("mpm-disk-put-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A profile-sized value (about 600 bytes).
fn profile(i: usize) -> String {
    format!("{i:08}:{}", "agent profile body ".repeat(32))
}

fn put(c: &mut Criterion) {
    let mut g = c.benchmark_group("disk_put");
    let keys: Vec<String> = (0..KEYS).map(|i| format!("agent_profile:{i:08}")).collect();
    let values: Vec<String> = (0..KEYS).map(profile).collect();
    for (name, w) in [
        ("mpm_write_behind", WriteBehind::default()),
        ("mpm_commit_per_put", WriteBehind::off()),
    ] {
        let scratch = Scratch::new(name);
        let disk: DiskTier<String> = DiskTier::builder(&scratch.0)
            .write_behind(w)
            .open()
            .unwrap();
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                disk.put(
                    black_box(&keys[i]),
                    &values[i],
                    Some(Duration::from_secs(3600)),
                    &[],
                )
                .unwrap()
            })
        });
        disk.flush().unwrap();
    }
    g.finish();
}

/// Busy work standing for a load between two writes.
fn work(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn put_spaced(c: &mut Criterion) {
    let mut g = c.benchmark_group("disk_put_spaced");
    let keys: Vec<String> = (0..KEYS).map(|i| format!("agent_profile:{i:08}")).collect();
    let values: Vec<String> = (0..KEYS).map(profile).collect();
    for (name, w) in [
        ("mpm_write_behind", WriteBehind::default()),
        ("mpm_commit_per_put", WriteBehind::off()),
    ] {
        let scratch = Scratch::new(name);
        let disk: DiskTier<String> = DiskTier::builder(&scratch.0)
            .write_behind(w)
            .open()
            .unwrap();
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    work(Duration::from_micros(20));
                    i = (i + 1) % KEYS;
                    let t = Instant::now();
                    disk.put(
                        black_box(&keys[i]),
                        &values[i],
                        Some(Duration::from_secs(3600)),
                        &[],
                    )
                    .unwrap();
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
