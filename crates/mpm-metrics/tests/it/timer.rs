//! Scoped timers: duration, failure, panic, allocation delta.

use std::time::Duration;

use mpm_metrics::{Registry, Value};

fn count(r: &Registry, name: &str) -> u64 {
    match r.snapshot().get(name, &[]) {
        Some(Value::Histogram(h)) => h.count,
        Some(Value::Counter(c)) => *c,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn a_guard_records_its_duration_when_dropped() {
    let r = Registry::default();
    let t = r.timer("work", &[]).unwrap();
    let guard = t.start();
    let spin_until = std::time::Instant::now() + Duration::from_millis(2);
    while std::time::Instant::now() < spin_until {}
    let elapsed = guard.finish();
    assert!(elapsed >= Duration::from_millis(2), "{elapsed:?}");
    let snap = r.snapshot();
    let h = snap
        .get("work_duration_seconds", &[])
        .unwrap()
        .as_histogram()
        .unwrap();
    assert_eq!(h.count, 1);
    assert!(h.max >= 0.002 * 0.99, "{}", h.max);
    assert_eq!(count(&r, "work_errors_total"), 0);
}

#[test]
fn a_failed_guard_counts_an_error() {
    let r = Registry::default();
    let t = r.timer("work", &[]).unwrap();
    t.start().fail();
    drop(t.start());
    assert_eq!(count(&r, "work_duration_seconds"), 2);
    assert_eq!(count(&r, "work_errors_total"), 1);
}

#[test]
fn a_guard_dropped_during_a_panic_counts_an_error() {
    let r = Registry::default();
    let t = r.timer("work", &[]).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _guard = t.start();
        panic!("deployment failed");
    }));
    assert!(result.is_err());
    assert_eq!(count(&r, "work_duration_seconds"), 1);
    assert_eq!(count(&r, "work_errors_total"), 1);
}

#[test]
fn a_memory_timer_records_the_allocation_delta() {
    let r = Registry::default();
    let t = r.memory_timer("build", &[]).unwrap();
    let kept = {
        let _guard = t.start();
        let kept = vec![1u8; 100_000];
        let freed = vec![2u8; 50_000];
        drop(freed);
        kept
    };
    let snap = r.snapshot();
    let allocated = snap
        .get("build_allocated_bytes", &[])
        .unwrap()
        .as_histogram()
        .unwrap();
    assert_eq!(allocated.count, 1);
    assert!(
        (allocated.max - 150_000.0).abs() <= 1_500.0,
        "{}",
        allocated.max
    );
    assert_eq!(
        snap.get("build_memory_delta_bytes", &[]),
        Some(&Value::IntGauge(100_000))
    );
    drop(kept);
}
