//! The counting allocator, and allocation-free recording.

use mpm_metrics::{CountingAllocator, Registry, Unit, thread_stats};

#[test]
fn recording_ten_million_samples_allocates_nothing() {
    let r = Registry::default();
    let h = r.histogram("lat", &[("op", "get")], Unit::Seconds).unwrap();
    let c = r.counter("ops", &[]).unwrap();
    let g = r.gauge("level", &[]).unwrap();
    let timer = r.timer("scope", &[]).unwrap();
    assert!(CountingAllocator::is_active());
    // A histogram's first record on a thread makes that thread's buckets (once); a timer's
    // first guard does the same for its duration histogram.
    h.record(0);
    drop(timer.start());
    let before = thread_stats();
    for i in 0..10_000_000u64 {
        h.record(i.wrapping_mul(0x9E37_79B9) >> 20);
        c.inc();
    }
    for i in 0..1000 {
        g.set(i as f64);
        let _guard = timer.start();
    }
    let spent = thread_stats().since(&before);
    assert_eq!(spent.allocations, 0, "{spent:?}");
    assert_eq!(h.snapshot().count, 10_000_001);
}

#[test]
fn allocations_are_counted_per_thread() {
    let before = thread_stats();
    let v: Vec<u8> = Vec::with_capacity(4096);
    let mid = thread_stats().since(&before);
    assert_eq!(mid.allocations, 1);
    assert!(mid.allocated_bytes >= 4096);
    drop(v);
    let after = thread_stats().since(&before);
    assert_eq!(after.deallocations, 1);
    assert_eq!(after.freed_bytes, mid.allocated_bytes);
}

#[test]
fn many_threads_allocating_at_once_keep_exact_counts() {
    std::thread::scope(|s| {
        for t in 0..8usize {
            s.spawn(move || {
                let before = thread_stats();
                let mut kept = Vec::new();
                for i in 0..2_000usize {
                    let b = vec![0u8; 16 + (i + t) % 64];
                    if i % 2 == 0 {
                        kept.push(b);
                    }
                }
                let spent = thread_stats().since(&before);
                // 2,000 buffers plus the growth of `kept`.
                assert!(spent.allocations >= 2_000, "{spent:?}");
                let live = spent.allocated_bytes - spent.freed_bytes;
                let held: usize = kept.iter().map(Vec::capacity).sum::<usize>()
                    + kept.capacity() * std::mem::size_of::<Vec<u8>>();
                assert_eq!(live as usize, held);
            });
        }
    });
}
