//! Leak detection: an object held past the threshold is reported with the acquiring line.

use std::sync::Arc;
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
        .get("pool_leaks_total", &[("pool", "t")])
        .unwrap()
        .as_f64();
    assert_eq!(leaks, 1.0);
    drop(held);
}
