//! L1 memory overhead per entry, measured with the counting allocator.

use std::num::NonZeroUsize;

use mpm_cache::MemoryTier;

#[test]
fn l1_overhead_per_entry_beyond_key_and_value() {
    const N: usize = 100_000;
    if !mpm_metrics::CountingAllocator::is_active() {
        eprintln!("skipped: the counting allocator is not the global allocator");
        return;
    }
    let measure = |f: &dyn Fn() -> Box<dyn std::any::Any>| {
        let before = mpm_metrics::thread_stats();
        let held = f();
        let after = mpm_metrics::thread_stats().since(&before);
        drop(held);
        after.allocated_bytes.saturating_sub(after.freed_bytes) as f64 / N as f64
    };
    let ours = measure(&|| {
        let t: MemoryTier<u64, u64> = MemoryTier::builder()
            .max_entries(NonZeroUsize::new(N).unwrap())
            .default_ttl(Some(std::time::Duration::from_secs(60)))
            .build()
            .unwrap();
        for k in 0..N as u64 {
            t.insert(k, k);
        }
        Box::new(t)
    });
    let bare = measure(&|| {
        let c: quick_cache::sync::Cache<u64, u64> = quick_cache::sync::Cache::new(N);
        for k in 0..N as u64 {
            c.insert(k, k);
        }
        Box::new(c)
    });
    let payload = 16.0; // u64 key + u64 value
    eprintln!(
        "bytes per entry: mpm {ours:.1} (overhead {:.1}), bare quick_cache {bare:.1} (overhead {:.1})",
        ours - payload,
        bare - payload
    );
    assert!(
        ours - payload <= 64.0,
        "overhead {:.1} bytes per entry",
        ours - payload
    );
}
