//! Get-or-create, names, labels, the cardinality cap, removal, the guide's API.

use std::num::NonZeroUsize;
use std::sync::Arc;

use mpm_metrics::{Error, Registry, Unit, Value};

#[track_caller]
fn check_metric_name(name: &str, ok: bool) {
    let r = Registry::default().counter(name, &[]);
    match (ok, r) {
        (true, Ok(_)) => {}
        (false, Err(Error::InvalidMetricName { name: n, .. })) => assert_eq!(n, name),
        (ok, other) => panic!("{name:?}: expected ok={ok}, got {other:?}"),
    }
}

#[track_caller]
fn check_label_name(label: &str, ok: bool) {
    let r = Registry::default().counter("m", &[(label, "v")]);
    match (ok, r) {
        (true, Ok(_)) => {}
        (
            false,
            Err(Error::InvalidLabelName {
                label: l, metric, ..
            }),
        ) => {
            assert_eq!((l.as_str(), metric.as_str()), (label, "m"));
        }
        (ok, other) => panic!("{label:?}: expected ok={ok}, got {other:?}"),
    }
}

#[test]
fn metric_names() {
    check_metric_name("requests_total", true);
    check_metric_name("_private", true);
    check_metric_name("ns:subsystem:rate5m", true);
    check_metric_name("", false);
    check_metric_name("9lives", false);
    check_metric_name("http.requests", false);
    check_metric_name("with space", false);
    check_metric_name("ünïcode", false);
}

#[test]
fn label_names() {
    check_label_name("route", true);
    check_label_name("_x", true);
    check_label_name("", false);
    check_label_name("__reserved", false);
    check_label_name("has:colon", false);
    check_label_name("0digit", false);
}

#[test]
fn a_label_given_twice_is_refused() {
    let err = Registry::default()
        .counter("m", &[("a", "1"), ("a", "2")])
        .unwrap_err();
    assert!(err.to_string().contains("given twice"), "{err}");
}

#[test]
fn the_same_name_and_labels_give_the_same_cell_in_any_label_order() {
    let r = Registry::default();
    let a = r.counter("m", &[("x", "1"), ("y", "2")]).unwrap();
    let b = r.counter("m", &[("y", "2"), ("x", "1")]).unwrap();
    let other = r.counter("m", &[("x", "1"), ("y", "3")]).unwrap();
    assert!(a.same_as(&b));
    assert!(!a.same_as(&other));
}

#[test]
fn a_name_keeps_its_kind() {
    let r = Registry::default();
    r.counter("m", &[]).unwrap();
    let err = r.gauge("m", &[("other", "labels")]).unwrap_err();
    assert_eq!(
        err,
        Error::KindMismatch {
            name: "m".into(),
            existing: "counter",
            requested: "gauge"
        }
    );
    assert_eq!(
        err.to_string(),
        "metric \"m\" is already registered as a counter, so it cannot be used as a gauge"
    );
}

#[test]
fn label_sets_beyond_the_cap_share_one_overflow_series() {
    let r = Registry::builder()
        .max_series_per_metric(NonZeroUsize::new(10).unwrap())
        .build();
    for i in 0..1000 {
        r.counter("per_user", &[("user", &i.to_string())])
            .unwrap()
            .inc();
    }
    // An existing series is still found after the cap is reached.
    r.counter("per_user", &[("user", "3")]).unwrap().inc();
    let snap = r.snapshot();
    let m = snap.metric("per_user").unwrap();
    assert_eq!(m.series.len(), 11);
    assert_eq!(m.overflowed, 990);
    assert_eq!(
        snap.get("per_user", &[("mpm_overflow", "true")]),
        Some(&Value::Counter(990))
    );
    assert_eq!(
        snap.get("per_user", &[("user", "3")]),
        Some(&Value::Counter(2))
    );
}

#[test]
fn removal_detaches_a_series() {
    let r = Registry::default();
    let c = r.counter("m", &[("k", "a")]).unwrap();
    r.counter("m", &[("k", "b")]).unwrap();
    assert!(r.remove("m", &[("k", "a")]));
    assert!(!r.remove("m", &[("k", "a")]));
    c.inc(); // still safe to use
    let snap = r.snapshot();
    assert_eq!(snap.metric("m").unwrap().series.len(), 1);
    assert!(r.remove("m", &[("k", "b")]));
    assert!(r.snapshot().metric("m").is_none());
    assert!(!r.remove("never", &[]));
}

#[test]
fn record_metric_sets_a_labelled_gauge_and_refuses_nan() {
    let r = Registry::default();
    r.record_metric("queue_depth", 3.5, &[("queue", "deploy")])
        .unwrap();
    r.record_metric("queue_depth", 4.0, &[("queue", "deploy")])
        .unwrap();
    let err = r
        .record_metric("queue_depth", f64::NAN, &[("queue", "deploy")])
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err:?}");
    assert!(r.record_metric("queue_depth", f64::INFINITY, &[]).is_err());
    let snap = r.snapshot();
    assert_eq!(
        snap.get("queue_depth", &[("queue", "deploy")]),
        Some(&Value::Gauge(4.0))
    );
    assert_eq!(
        r.gauge("queue_depth", &[("queue", "deploy")])
            .unwrap()
            .rejected(),
        1
    );
}

#[test]
fn increment_counter_and_the_start_stop_timer_pair() {
    let r = Registry::default();
    r.increment_counter("agent_errors", &[]).unwrap();
    r.increment_counter("agent_errors", &[]).unwrap();
    let id = r.start_timer("deploy").unwrap();
    assert_eq!(r.running_timers(), 1);
    let d = r.stop_timer(id).unwrap();
    assert_eq!(r.running_timers(), 0);
    assert_eq!(
        r.stop_timer(id).unwrap_err(),
        Error::UnknownTimer { id: id.get() }
    );
    let snap = r.snapshot();
    assert_eq!(snap.get("agent_errors", &[]), Some(&Value::Counter(2)));
    let h = snap
        .get("deploy_duration_seconds", &[])
        .unwrap()
        .as_histogram()
        .unwrap();
    assert_eq!(h.count, 1);
    assert!((h.max - d.as_secs_f64()).abs() <= d.as_secs_f64() * 0.01 + 1e-9);
}

#[test]
fn many_threads_creating_and_recording_give_exact_counts() {
    let r = Registry::default();
    let barrier = Arc::new(std::sync::Barrier::new(8));
    std::thread::scope(|s| {
        for t in 0..8 {
            let r = r.clone();
            let barrier = barrier.clone();
            s.spawn(move || {
                barrier.wait();
                for i in 0..2_000 {
                    let route = format!("/r{}", i % 16);
                    r.counter("hits", &[("route", &route)]).unwrap().inc();
                    r.histogram("lat", &[("t", &(t % 2).to_string())], Unit::None)
                        .unwrap()
                        .record(i);
                }
            });
        }
    });
    let snap = r.snapshot();
    let total: f64 = snap
        .metric("hits")
        .unwrap()
        .series
        .iter()
        .map(|s| s.value.as_f64())
        .sum();
    assert_eq!(total, 16_000.0);
    assert_eq!(snap.metric("hits").unwrap().series.len(), 16);
    let lat: f64 = snap
        .metric("lat")
        .unwrap()
        .series
        .iter()
        .map(|s| s.value.as_f64())
        .sum();
    assert_eq!(lat, 16_000.0);
}

#[test]
fn counters_stay_exact_while_threads_come_and_go_beyond_the_shard_count() {
    use mpm_metrics::Counter;
    let c = Counter::new();
    let other = Counter::new();
    // 3 waves of 40 threads alive at once: more than the shards, so some use the shared cell,
    // and shards are handed from exiting threads to new ones.
    for wave in 0..3u64 {
        let barrier = Arc::new(std::sync::Barrier::new(40));
        std::thread::scope(|s| {
            for t in 0..40u64 {
                let (c, other, barrier) = (c.clone(), other.clone(), barrier.clone());
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..5_000u64 {
                        c.inc();
                        other.add((wave + t + i) % 3);
                    }
                    barrier.wait();
                });
            }
        });
    }
    assert_eq!(c.get(), 3 * 40 * 5_000);
    let expected: u64 = (0..3u64)
        .flat_map(|w| (0..40u64).flat_map(move |t| (0..5_000u64).map(move |i| (w + t + i) % 3)))
        .sum();
    assert_eq!(other.get(), expected);
}

#[test]
fn absolute_raises_but_never_lowers() {
    let c = mpm_metrics::Counter::new();
    c.add(10);
    c.absolute(25);
    assert_eq!(c.get(), 25);
    c.absolute(5);
    assert_eq!(c.get(), 25);
}

#[test]
fn removing_most_series_keeps_the_others_rendered_right() {
    let r = Registry::default();
    for i in 0..100 {
        r.counter("jobs_total", &[("id", &i.to_string())])
            .unwrap()
            .add(i);
    }
    for i in 0..80 {
        assert!(r.remove("jobs_total", &[("id", &i.to_string())]));
    }
    r.counter("jobs_total", &[("id", "new")]).unwrap().add(7);
    let text = r.render_prometheus();
    let e = mpm_metrics::Exposition::parse(&text).unwrap();
    assert_eq!(e.family("jobs_total").unwrap().samples.len(), 21, "{text}");
    for i in 80..100u64 {
        assert_eq!(
            e.value("jobs_total", &[("id", &i.to_string())]),
            Some(i as f64)
        );
    }
    assert_eq!(e.value("jobs_total", &[("id", "new")]), Some(7.0));
}

#[test]
fn every_render_shows_the_series_added_and_removed_since_the_last() {
    let r = Registry::default();
    r.counter("jobs_total", &[("id", "b")]).unwrap().add(2);
    r.histogram("wait", &[], mpm_metrics::Unit::None)
        .unwrap()
        .record(3);
    let first = r.render_prometheus();
    assert!(first.contains("jobs_total{id=\"b\"} 2\n"), "{first}");
    assert!(first.contains("wait_count 1\n"), "{first}");
    assert_eq!(r.render_prometheus(), first);

    r.counter("jobs_total", &[("id", "a")]).unwrap().add(1);
    r.histogram("wait", &[("queue", "q")], mpm_metrics::Unit::None)
        .unwrap()
        .record(5);
    let second = r.render_prometheus();
    let a = second.find("jobs_total{id=\"a\"} 1\n").expect(&second);
    let b = second.find("jobs_total{id=\"b\"} 2\n").expect(&second);
    assert!(a < b, "series render in label order: {second}");
    assert!(
        second.contains("wait_bucket{queue=\"q\",le=\"+Inf\"} 1\n"),
        "{second}"
    );
    assert!(second.contains("wait_sum{queue=\"q\"} 5.0\n"), "{second}");
    assert!(second.contains("wait_count 1\n"), "{second}");

    // Removing most series also moves the others' line starts.
    for i in 0..50 {
        r.counter("jobs_total", &[("id", &format!("x{i:02}"))])
            .unwrap()
            .add(i);
    }
    r.render_prometheus();
    for i in 0..50 {
        assert!(r.remove("jobs_total", &[("id", &format!("x{i:02}"))]));
    }
    assert!(r.remove("jobs_total", &[("id", "a")]));
    let third = r.render_prometheus();
    let jobs: Vec<&str> = third
        .lines()
        .filter(|l| l.starts_with("jobs_total"))
        .collect();
    assert_eq!(jobs, ["jobs_total{id=\"b\"} 2"], "{third}");
}

#[test]
fn a_render_sums_what_every_thread_counted_into_every_series() {
    let registry = Registry::builder()
        .max_series_per_metric(NonZeroUsize::new(500).unwrap())
        .build();
    // More series than one block of cells holds, made in an order unlike the render's.
    let counters: Vec<_> = (0..300)
        .rev()
        .map(|i| {
            registry
                .counter("hits_total", &[("key", &format!("k{i}"))])
                .unwrap()
        })
        .collect();
    for (i, c) in counters.iter().enumerate() {
        c.add(i as u64);
    }
    std::thread::scope(|s| {
        for t in 1..=3u64 {
            let counters = &counters;
            s.spawn(move || counters.iter().for_each(|c| c.add(t * 1000)));
        }
    });
    let text = mpm_metrics::Exposition::parse(&registry.render_prometheus()).unwrap();
    for (i, c) in counters.iter().enumerate() {
        let key = format!("k{}", 299 - i);
        let expected = i as u64 + 6000;
        assert_eq!(c.get(), expected);
        assert_eq!(
            text.value("hits_total", &[("key", &key)]),
            Some(expected as f64)
        );
    }
}

#[test]
fn a_series_made_after_a_removal_starts_at_zero_and_the_old_handle_stays_apart() {
    let registry = Registry::default();
    let old = registry.counter("jobs_total", &[("q", "a")]).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| old.add(5));
    });
    old.add(2);
    assert!(registry.remove("jobs_total", &[("q", "a")]));
    // Series made and dropped while the old handle lives, so cells are handed out again.
    for i in 0..100 {
        let c = registry
            .counter("other_total", &[("i", &i.to_string())])
            .unwrap();
        c.inc();
        assert!(registry.remove("other_total", &[("i", &i.to_string())]));
    }
    let new = registry.counter("jobs_total", &[("q", "a")]).unwrap();
    assert!(!new.same_as(&old));
    assert_eq!(new.get(), 0);
    old.add(1);
    assert_eq!(old.get(), 8);
    assert!(
        registry
            .render_prometheus()
            .contains("jobs_total{q=\"a\"} 0\n")
    );
    new.add(3);
    assert_eq!(old.get(), 8);
    assert!(
        registry
            .render_prometheus()
            .contains("jobs_total{q=\"a\"} 3\n")
    );
}

/// Handles live inside values that callers move across `catch_unwind` (a lazily built value
/// holds its init metrics): they stay unwind-safe, whatever their storage.
#[test]
fn handles_are_unwind_safe() {
    fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe + Send + Sync>() {}
    unwind_safe::<mpm_metrics::Counter>();
    unwind_safe::<mpm_metrics::Gauge>();
    unwind_safe::<mpm_metrics::Histogram>();
}
