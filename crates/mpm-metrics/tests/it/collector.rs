//! Collectors: gauges fresh at read time, weak targets, panics counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use mpm_metrics::{COLLECTOR_PANICS, Exposition, Registry};

#[test]
fn gauges_are_current_at_every_read_without_the_app_calling_anything() {
    let r = Registry::default();
    let state = Arc::new(AtomicI64::new(0));
    let s = r.scope("cache", "profiles").unwrap();
    let entries = s.int_gauge("entries", "Entries.", &[]).unwrap();
    s.collector(&state, move |n| entries.set(n.load(Ordering::Relaxed)));
    for n in [20, 7, 0, 13] {
        state.store(n, Ordering::Relaxed);
        let text = r.render_prometheus();
        let e = Exposition::parse(&text).unwrap();
        assert_eq!(
            e.value("mpm_cache_entries", &[("name", "profiles")]),
            Some(n as f64)
        );
        let snap = r.snapshot();
        assert_eq!(
            snap.get("mpm_cache_entries", &[("name", "profiles")])
                .unwrap()
                .as_f64(),
            n as f64
        );
    }
}

#[test]
fn dropping_the_target_or_the_scope_removes_the_collector() {
    let r = Registry::default();
    let runs = Arc::new(AtomicUsize::new(0));
    let target = Arc::new(());
    let counted = Arc::clone(&runs);
    r.add_collector(&target, move |_| {
        counted.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(r.collectors(), 1);
    r.snapshot();
    assert_eq!(runs.load(Ordering::Relaxed), 1);
    drop(target);
    r.snapshot();
    assert_eq!(runs.load(Ordering::Relaxed), 1, "a dead target is not run");
    assert_eq!(r.collectors(), 0);

    // Through a scope: the target outlives the scope, the collector does not.
    let target = Arc::new(());
    let s = r.scope("pool", "pg").unwrap();
    let counted = Arc::clone(&runs);
    s.collector(&target, move |_| {
        counted.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(r.collectors(), 1);
    drop(s);
    assert_eq!(r.collectors(), 0);
    r.snapshot();
    assert_eq!(runs.load(Ordering::Relaxed), 1);
}

#[test]
fn a_panicking_collector_is_counted_and_the_scrape_goes_on() {
    let r = Registry::default();
    let target = Arc::new(AtomicI64::new(3));
    let ok = r.int_gauge("ok", &[]).unwrap();
    r.add_collector(&target, |_| panic!("collector bug"));
    r.add_collector(&target, move |t| ok.set(t.load(Ordering::Relaxed)));
    let text = r.render_prometheus();
    assert!(text.contains("ok 3\n"), "{text}");
    assert!(text.contains(&format!("{COLLECTOR_PANICS} 1\n")), "{text}");
    r.snapshot();
    assert_eq!(r.counter(COLLECTOR_PANICS, &[]).unwrap().get(), 2);
    assert!(text.contains(&format!("# HELP {COLLECTOR_PANICS} Collectors")));
}

#[test]
fn a_collector_that_reads_the_registry_does_not_recurse() {
    let r = Registry::default();
    let target = Arc::new(r.clone());
    let seen = r.int_gauge("families_seen", &[]).unwrap();
    r.add_collector(&target, move |reg| {
        // Reading inside a collector neither deadlocks nor runs the collectors again.
        seen.set(reg.snapshot().metrics.len() as i64);
        let _ = reg.render_prometheus();
        reg.counter("made_in_collector_total", &[]).unwrap().inc();
    });
    let snap = r.snapshot();
    assert_eq!(
        snap.get("made_in_collector_total", &[]).unwrap().as_f64(),
        1.0
    );
    // The registry holds only a weak reference to its own clone here, so no cycle: this
    // `target` is the only strong one.
    drop(target);
    assert_eq!(r.collectors(), 0);
}

#[test]
fn scrapes_and_registrations_race_safely() {
    // Readers scrape while writers add and drop components with collectors: every read sees
    // whole values, nothing deadlocks, and at the end no collector is left.
    let r = Registry::default();
    std::thread::scope(|t| {
        for w in 0..4 {
            let r = &r;
            t.spawn(move || {
                for i in 0..200 {
                    let state = Arc::new(AtomicI64::new(i));
                    let s = r.scope("cache", &format!("w{w}-{i}")).unwrap();
                    let g = s.int_gauge("entries", "Entries.", &[]).unwrap();
                    s.collector(&state, move |n| g.set(n.load(Ordering::Relaxed)));
                    if i % 3 == 0 {
                        drop(state);
                    }
                }
            });
        }
        for _ in 0..4 {
            let r = &r;
            t.spawn(move || {
                for _ in 0..50 {
                    let text = r.render_prometheus();
                    Exposition::parse(&text).unwrap();
                    r.snapshot();
                }
            });
        }
    });
    assert_eq!(r.collectors(), 0);
    assert_eq!(
        r.snapshot()
            .metric("mpm_cache_entries")
            .unwrap()
            .series
            .len(),
        800
    );
}
