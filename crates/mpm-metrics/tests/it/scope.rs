//! Scopes: the contract's names, labels and one claim per (component, instance).

use mpm_metrics::{Error, Exposition, Registry, Unit};

#[test]
fn a_scope_prefixes_names_and_adds_the_instance_label() {
    let r = Registry::default();
    let s = r.scope("cache", "profiles").unwrap();
    s.counter("hits_total", "Hits.", &[("tier", "l1")])
        .unwrap()
        .add(2);
    s.int_gauge("entries", "Entries.", &[]).unwrap().set(5);
    s.histogram("load_seconds", "Loads.", Unit::Seconds, &[])
        .unwrap()
        .record(1_000);
    let e = Exposition::parse(&r.render_prometheus()).unwrap();
    assert_eq!(
        e.value(
            "mpm_cache_hits_total",
            &[("name", "profiles"), ("tier", "l1")]
        ),
        Some(2.0)
    );
    assert_eq!(
        e.value("mpm_cache_entries", &[("name", "profiles")]),
        Some(5.0)
    );
    assert_eq!(
        e.value("mpm_cache_load_seconds_count", &[("name", "profiles")]),
        Some(1.0)
    );
    assert_eq!(
        e.family("mpm_cache_hits_total").unwrap().help.as_deref(),
        Some("Hits.")
    );
}

#[test]
fn a_second_claim_of_the_same_component_and_name_is_refused() {
    let r = Registry::default();
    let _first = r.scope("cache", "profiles").unwrap();
    let err = r.scope("cache", "profiles").unwrap_err();
    assert_eq!(
        err,
        Error::AlreadyRegistered {
            component: "cache".into(),
            instance: "profiles".into()
        }
    );
    // A shared claim cannot join an exclusive one either.
    assert!(r.shared_scope("cache", "profiles").is_err());
    // Another name, or another component with the same name, is fine.
    r.scope("cache", "sessions").unwrap();
    r.scope("pool", "profiles").unwrap();
}

#[test]
fn shared_scopes_report_into_the_same_series() {
    let r = Registry::default();
    let a = r.shared_scope("pool", "pg").unwrap();
    let b = r.shared_scope("pool", "pg").unwrap();
    a.counter("created_total", "Created.", &[]).unwrap().inc();
    b.counter("created_total", "Created.", &[]).unwrap().inc();
    assert!(r.scope("pool", "pg").is_err());
    let snap = r.snapshot();
    assert_eq!(
        snap.get("mpm_pool_created_total", &[("name", "pg")])
            .unwrap()
            .as_f64(),
        2.0
    );
    drop(a);
    assert!(r.scope("pool", "pg").is_err(), "b still holds the claim");
    drop(b);
    r.scope("pool", "pg").unwrap();
}

#[test]
fn dropping_the_last_clone_releases_the_claim_and_keeps_the_series() {
    let r = Registry::default();
    let s = r.scope("lazy", "config").unwrap();
    let clone = s.clone();
    s.counter("inits_total", "Inits.", &[]).unwrap().inc();
    drop(s);
    assert!(r.scope("lazy", "config").is_err());
    drop(clone);
    let again = r.scope("lazy", "config").unwrap();
    let c = again.counter("inits_total", "Inits.", &[]).unwrap();
    assert_eq!(c.get(), 1, "a rebuilt component continues its counters");
}

#[test]
fn the_naming_rules_are_checked_at_registration() {
    let r = Registry::default();
    let s = r.scope("pool", "pg").unwrap();
    let refused = |res: Result<(), Error>| {
        assert!(
            matches!(
                res,
                Err(Error::InvalidMetricName { .. } | Error::InvalidLabelName { .. })
            ),
            "{res:?}"
        )
    };
    refused(s.counter("created", "Created.", &[]).map(drop));
    refused(s.int_gauge("idle_total", "Idle.", &[]).map(drop));
    refused(s.gauge("Idle", "Idle.", &[]).map(drop));
    refused(s.histogram("wait", "Wait.", Unit::Seconds, &[]).map(drop));
    refused(s.histogram("size", "Size.", Unit::Bytes, &[]).map(drop));
    refused(
        s.histogram("wait_seconds_count", "Wait.", Unit::None, &[])
            .map(drop),
    );
    refused(s.counter("created_total", "  ", &[]).map(drop));
    refused(
        s.counter("created_total", "Created.", &[("name", "other")])
            .map(drop),
    );
    refused(r.scope("Pool", "pg").map(drop));
    refused(r.scope("pool_", "pg").map(drop));
    refused(r.scope("pool", "").map(drop));
    // Nothing refused was created.
    assert!(r.snapshot().metrics.is_empty());
    // Any text is a valid instance name.
    let odd = r.scope("pool", "pg \"main\"\n").unwrap();
    odd.int_gauge("idle", "Idle.", &[]).unwrap().set(1);
    assert!(
        r.render_prometheus()
            .contains("mpm_pool_idle{name=\"pg \\\"main\\\"\\n\"} 1\n")
    );
}

#[test]
fn claims_hold_under_concurrent_builds() {
    // Many threads race to claim the same names: each name is won exactly once.
    let r = Registry::default();
    let won: Vec<usize> = std::thread::scope(|t| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let r = &r;
                t.spawn(move || {
                    let mut kept = Vec::new();
                    for i in 0..50 {
                        if let Ok(s) = r.scope("cache", &format!("c{i}")) {
                            kept.push(s);
                        }
                    }
                    // Keep the scopes alive until every thread is done claiming.
                    kept
                })
            })
            .collect();
        let scopes: Vec<Vec<_>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        scopes.iter().map(Vec::len).collect()
    });
    assert_eq!(won.iter().sum::<usize>(), 50);
}
