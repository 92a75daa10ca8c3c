//! `promtool check metrics` on an exposition that uses every kind of metric.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use mpm_metrics::{Buckets, Registry, Scope, Unit};
use mpm_testkit::prometheus::promtool_check_metrics;

/// A registry and what keeps its collectors alive.
pub(crate) struct EveryKind {
    pub(crate) registry: Registry,
    _scopes: Vec<Scope>,
    _state: Arc<AtomicI64>,
}

/// A registry with every kind of metric, through scopes and directly, with collectors (one
/// of them panicking), custom buckets, empty histograms and awkward label values.
pub(crate) fn every_kind() -> EveryKind {
    let r = Registry::default();
    let state = Arc::new(AtomicI64::new(20));
    let cache = r.scope("cache", "profiles").unwrap();
    cache
        .counter(
            "hits_total",
            "Lookups answered by a tier.",
            &[("tier", "l1")],
        )
        .unwrap()
        .add(24);
    cache
        .counter("misses_total", "Lookups no tier answered.", &[])
        .unwrap()
        .inc();
    let entries = cache
        .int_gauge(
            "entries",
            "Entries held, at scrape time.",
            &[("tier", "l1")],
        )
        .unwrap();
    cache.collector(&state, move |s| entries.set(s.load(Ordering::Relaxed)));
    cache
        .gauge("hit_ratio", "Hits over lookups.", &[])
        .unwrap()
        .set(0.96);
    cache
        .histogram(
            "load_seconds",
            "Time spent in the loader.",
            Unit::Seconds,
            &[],
        )
        .unwrap()
        .record(3_000_000);
    cache
        .histogram("entry_bytes", "Size of stored entries.", Unit::Bytes, &[])
        .unwrap();
    let pool = r.scope("pool", "pg \"main\"\\\n").unwrap();
    let wait = pool
        .histogram(
            "acquire_seconds",
            "Time to get a connection.",
            Unit::Seconds,
            &[],
        )
        .unwrap();
    for us in [50u64, 900, 12_000] {
        wait.record(us * 1_000);
    }
    pool.histogram_with_buckets(
        "batch_size",
        "Jobs per batch.",
        Unit::None,
        Buckets::new([1.0, 10.0, 100.0]).unwrap(),
        &[],
    )
    .unwrap()
    .record(7);
    r.add_collector(&state, |_| panic!("a collector bug"));
    r.timer("deploy", &[("stage", "build")])
        .unwrap()
        .start()
        .fail();
    r.gauge("negative_zero", &[]).unwrap().set(-0.0);
    EveryKind {
        registry: r,
        _scopes: vec![cache, pool],
        _state: state,
    }
}

pub(crate) fn accepts_an_exposition_with_every_kind() {
    let all = every_kind();
    let text = all.registry.render_prometheus();
    assert!(
        text.contains("mpm_metrics_collector_panics_total 1\n"),
        "{text}"
    );
    if let Err(said) = promtool_check_metrics(&text) {
        panic!("{said}\n---\n{text}");
    }
}
