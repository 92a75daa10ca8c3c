//! The tracing layer and the `metrics` recorder.

use mpm_metrics::{MetricsLayer, MetricsRecorder, Registry, Value};
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn span_durations_land_in_histograms_named_after_the_spans() {
    let r = Registry::default();
    let subscriber = tracing_subscriber::registry().with(MetricsLayer::new(r.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..3 {
            let _s = tracing::info_span!("load profile").entered();
        }
        let _other = tracing::debug_span!("db.query").entered();
    });
    let snap = r.snapshot();
    let count = |name: &str| snap.get(name, &[]).unwrap().as_histogram().unwrap().count;
    assert_eq!(count("load_profile_duration_seconds"), 3);
    assert_eq!(count("db_query_duration_seconds"), 1);
}

#[test]
fn a_span_name_taken_by_another_kind_is_skipped_not_fatal() {
    let r = Registry::default();
    r.counter("busy_duration_seconds", &[]).unwrap();
    let subscriber = tracing_subscriber::registry().with(MetricsLayer::new(r.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let _s = tracing::info_span!("busy").entered();
    });
    assert_eq!(
        r.snapshot().get("busy_duration_seconds", &[]),
        Some(&Value::Counter(0))
    );
}

#[test]
fn the_metrics_crate_records_into_the_registry() {
    let r = Registry::default();
    let recorder = MetricsRecorder::new(r.clone());
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_counter!("jobs.done", "Jobs finished.");
        metrics::counter!("jobs.done", "queue" => "deploy").increment(2);
        metrics::counter!("jobs.done", "queue" => "deploy").increment(1);
        metrics::gauge!("queue.depth").set(7.0);
        metrics::gauge!("queue.depth").decrement(2.0);
        metrics::gauge!("queue.depth").set(f64::NAN); // refused, keeps 5
        for ms in 1..=100 {
            metrics::histogram!("job.seconds").record(ms as f64 / 1000.0);
        }
        metrics::histogram!("job.seconds").record(-1.0); // refused
    });
    let snap = r.snapshot();
    assert_eq!(
        snap.get("jobs_done", &[("queue", "deploy")]),
        Some(&Value::Counter(3))
    );
    assert_eq!(snap.get("queue_depth", &[]), Some(&Value::Gauge(5.0)));
    let h = snap
        .get("job_seconds", &[])
        .unwrap()
        .as_histogram()
        .unwrap();
    assert_eq!((h.count, h.rejected), (100, 1));
    assert!((h.p50 - 0.05).abs() <= 0.0005, "{}", h.p50);
    assert!(
        r.render_prometheus()
            .contains("# HELP jobs_done Jobs finished.\n")
    );
}
