//! The contract's table check, and the exposition rules it relies on (HELP and TYPE on every
//! family, fixed buckets, no -0.0).

use mpm_metrics::contract::check_metric_table;
use mpm_metrics::{Buckets, DEFAULT_HELP, Exposition, Registry, Unit};

const TABLE: &str = "
| metric | type | labels | help |
|---|---|---|---|
| `mpm_cache_hits_total` | counter | `name`, `tier` | Lookups answered. |
| `mpm_cache_entries` | gauge | `name` | Entries held. |
| `mpm_cache_load_seconds` | histogram | `name` | Time in the loader. |
";

fn cache_registry() -> Registry {
    let r = Registry::default();
    let s = r.scope("cache", "profiles").unwrap();
    s.counter("hits_total", "Lookups answered.", &[("tier", "l1")])
        .unwrap()
        .inc();
    s.int_gauge("entries", "Entries held.", &[]).unwrap().set(1);
    s.histogram("load_seconds", "Time in the loader.", Unit::Seconds, &[])
        .unwrap()
        .record(10);
    // Another crate's metric in the same registry is not this table's business.
    r.scope("pool", "pg")
        .unwrap()
        .int_gauge("idle", "Idle.", &[])
        .unwrap()
        .set(0);
    r
}

#[test]
fn a_true_table_passes() {
    let text = cache_registry().render_prometheus();
    check_metric_table(TABLE, &text, "mpm_cache_").unwrap();
}

#[test]
fn every_kind_of_drift_is_reported() {
    let r = cache_registry();
    r.counter("mpm_cache_misses_total", &[("name", "x")])
        .unwrap()
        .inc();
    let text = r.render_prometheus();
    let drifted = TABLE
        .replace(
            "| `mpm_cache_entries` | gauge |",
            "| `mpm_cache_entries` | counter |",
        )
        .replace("`name`, `tier`", "`name`")
        + "| `mpm_cache_evictions_total` | counter | `name` | Evicted. |\n";
    let err = check_metric_table(&drifted, &text, "mpm_cache_").unwrap_err();
    let all = err.to_string();
    for expected in [
        "`mpm_cache_entries` is listed as a counter but exported as a gauge",
        "`mpm_cache_entries` is a counter, so its name ends in `_total`",
        "`mpm_cache_hits_total` is listed with labels",
        "`mpm_cache_evictions_total` is listed but not exported",
        "`mpm_cache_misses_total` is exported but not listed",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in\n{all}");
    }
    assert_eq!(err.problems.len(), 5, "{all}");
}

#[test]
fn missing_help_and_instance_label_are_reported() {
    let r = Registry::default();
    r.counter("mpm_x_things_total", &[]).unwrap().inc();
    let text = r.render_prometheus();
    let table = "| `mpm_x_things_total` | counter | - | Things. |";
    let err = check_metric_table(table, &text, "mpm_x_").unwrap_err();
    let all = err.to_string();
    assert!(all.contains("without a help text"), "{all}");
    assert!(all.contains("lacks the instance label `name`"), "{all}");
    assert!(check_metric_table("no rows here", &text, "mpm_x_").is_err());
}

#[test]
fn every_family_has_help_and_type_lines() {
    let text = cache_registry().render_prometheus();
    let e = Exposition::parse(&text).unwrap();
    for (name, family) in e.families() {
        assert!(family.help.is_some(), "{name}");
        assert_ne!(family.kind, "untyped", "{name}");
    }
    let r = Registry::default();
    r.gauge("plain", &[]).unwrap().set(1.0);
    assert!(r.render_prometheus().starts_with(&format!(
        "# HELP plain {DEFAULT_HELP}\n# TYPE plain gauge\n"
    )));
}

#[test]
fn no_value_is_rendered_as_negative_zero() {
    let r = Registry::default();
    r.histogram("empty_seconds", &[], Unit::Seconds).unwrap();
    r.histogram("empty", &[], Unit::None).unwrap();
    r.gauge("neg_zero", &[]).unwrap().set(-0.0);
    let text = r.render_prometheus();
    assert!(!text.contains("-0"), "{text}");
    assert!(text.contains("empty_seconds_sum 0.0\n"), "{text}");
    let snap = r.snapshot();
    let h = snap.get("empty", &[]).unwrap().as_histogram().unwrap();
    assert!(h.sum.is_sign_positive(), "{}", h.sum);
}

#[test]
fn the_bucket_layout_is_fixed_whatever_is_recorded() {
    let r = Registry::default();
    let h = r.histogram("op_seconds", &[], Unit::Seconds).unwrap();
    let bounds = |r: &Registry| -> Vec<String> {
        let text = r.render_prometheus();
        text.lines()
            .filter(|l| l.starts_with("op_seconds_bucket"))
            .map(|l| l.split('"').nth(1).unwrap().to_owned())
            .collect()
    };
    let empty = bounds(&r);
    assert_eq!(empty.len(), 16, "{empty:?}");
    assert_eq!(empty.first().map(String::as_str), Some("1e-6"));
    assert_eq!(empty.last().map(String::as_str), Some("+Inf"));
    for v in [1, 1_000, 1_000_000_000, u64::MAX] {
        h.record(v);
        assert_eq!(bounds(&r), empty);
    }
    let e = Exposition::parse(&r.render_prometheus()).unwrap();
    // 1 ns and 1 us are below 1e-6 s (1 us lies within 1% of the bound, on the low side).
    assert_eq!(e.value("op_seconds_bucket", &[("le", "1e-6")]), Some(2.0));
    assert_eq!(e.value("op_seconds_bucket", &[("le", "1.0")]), Some(3.0));
    assert_eq!(e.value("op_seconds_bucket", &[("le", "10.0")]), Some(3.0));
    assert_eq!(e.value("op_seconds_bucket", &[("le", "+Inf")]), Some(4.0));
    assert_eq!(e.value("op_seconds_count", &[]), Some(4.0));
}

#[test]
fn a_histogram_can_be_given_its_own_bounds() {
    let r = Registry::default();
    let h = r.histogram("batch_size", &[], Unit::None).unwrap();
    r.set_buckets("batch_size", Buckets::new([1.0, 8.0, 64.0]).unwrap())
        .unwrap();
    for v in [1, 2, 8, 9, 100] {
        h.record(v);
    }
    let e = Exposition::parse(&r.render_prometheus()).unwrap();
    let at = |le| e.value("batch_size_bucket", &[("le", le)]);
    assert_eq!(
        (at("1.0"), at("8.0"), at("64.0"), at("+Inf")),
        (Some(1.0), Some(3.0), Some(4.0), Some(5.0))
    );
    assert_eq!(r.buckets("batch_size").unwrap().bounds(), &[1.0, 8.0, 64.0]);
    let s = r.scope("batch", "jobs").unwrap();
    s.histogram_with_buckets(
        "wait_seconds",
        "Wait.",
        Unit::Seconds,
        Buckets::exponential(0.001, 10.0, 3).unwrap(),
        &[],
    )
    .unwrap();
    assert_eq!(
        r.buckets("mpm_batch_wait_seconds").unwrap().bounds().len(),
        3
    );
}
