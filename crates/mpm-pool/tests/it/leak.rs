//! Leak detection: an object held past the threshold is reported with the acquiring line.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mpm_pool::{LeakReport, Pool};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::test_manager::TestManager;

#[tokio::test(start_paused = true)]
async fn a_held_object_is_reported_within_threshold_plus_ten_percent_with_its_line() {
    let reports: Arc<Mutex<Vec<(LeakReport, Instant)>>> = Arc::default();
    let sink = Arc::clone(&reports);
    let registry = mpm_metrics::Registry::default();
    let threshold = Duration::from_secs(2);
    let pool = Pool::builder(TestManager::new())
        .maintenance_interval(Some(Duration::from_secs(30)))
        .leak_detection(Some(threshold))
        .on_leak(move |r| sink.lock().push((r.clone(), Instant::now())))
        .metrics(&registry, "t")
        .build()
        .await
        .unwrap();
    let start = Instant::now();
    let line = line!() + 1;
    let held = pool.get().await.unwrap();
    let returned = pool.get().await.unwrap();
    drop(returned); // returned in time: never reported
    tokio::time::sleep(threshold * 2).await;
    let reports = reports.lock().clone();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let (report, at) = &reports[0];
    assert_eq!(report.acquired_at.line(), line);
    assert!(report.acquired_at.file().ends_with("leak.rs"));
    let fired_after = *at - start;
    assert!(
        fired_after >= threshold && fired_after <= threshold.mul_f64(1.1),
        "{fired_after:?}"
    );
    let leaks = registry
        .snapshot()
        .get("mpm_pool_leaks_total", &[("name", "t")])
        .unwrap()
        .as_f64();
    assert_eq!(leaks, 1.0);
    // The object returned in time went back to the pool; the reported one, when it comes
    // back, is closed with reason `leaked`.
    let closed = |reason: &str| {
        registry
            .snapshot()
            .get(
                "mpm_pool_closed_total",
                &[("name", "t"), ("reason", reason)],
            )
            .unwrap()
            .as_f64()
    };
    assert_eq!(pool.manager().closed.load(Ordering::SeqCst), 0);
    let size = pool.status().size;
    let id = *held;
    drop(held);
    assert_eq!(closed("leaked"), 1.0);
    assert_eq!(pool.manager().closed.load(Ordering::SeqCst), 1);
    assert_eq!(pool.status().size, size - 1);
    for _ in 0..3 {
        assert_ne!(
            *pool.get().await.unwrap(),
            id,
            "the leaked object is never lent again"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_object_returned_within_the_threshold_is_kept() {
    let registry = mpm_metrics::Registry::default();
    let pool = Pool::builder(TestManager::new())
        .leak_detection(Some(Duration::from_secs(2)))
        .metrics(&registry, "t")
        .build()
        .await
        .unwrap();
    let held = pool.get().await.unwrap();
    let id = *held;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(held);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(*pool.get().await.unwrap(), id);
    assert_eq!(pool.manager().closed.load(Ordering::SeqCst), 0);
    let leaked = registry
        .snapshot()
        .get(
            "mpm_pool_closed_total",
            &[("name", "t"), ("reason", "leaked")],
        )
        .unwrap()
        .as_f64();
    assert_eq!(leaked, 0.0);
}
