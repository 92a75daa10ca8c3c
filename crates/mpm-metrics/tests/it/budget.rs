//! Budgets pass and fail where they should.

use std::time::Duration;

use mpm_metrics::{Budget, Registry, Statistic, Unit, check_budgets};

fn registry() -> Registry {
    let r = Registry::default();
    let h = r
        .histogram("get_duration_seconds", &[("tier", "l1")], Unit::Seconds)
        .unwrap();
    for i in 1..=1000u64 {
        h.record(i * 1_000); // 1 us .. 1 ms
    }
    r.counter("requests_total", &[]).unwrap().add(500);
    r.gauge("hit_ratio", &[]).unwrap().set(0.93);
    r
}

#[track_caller]
fn check(budget: Budget, passed: bool) {
    let report = check_budgets(&registry().snapshot(), std::slice::from_ref(&budget));
    assert_eq!(report.results[0].passed, passed, "{report}");
    assert_eq!(report.passed(), passed);
}

#[test]
fn histogram_statistics() {
    let p99 = |d| {
        Budget::duration_at_most("get_duration_seconds", Statistic::P99, d)
            .with_labels(&[("tier", "l1")])
    };
    check(p99(Duration::from_micros(1000)), true);
    check(p99(Duration::from_micros(900)), false);
    let at =
        |s, limit| Budget::at_most("get_duration_seconds", s, limit).with_labels(&[("tier", "l1")]);
    check(at(Statistic::P50, 0.000_51), true);
    check(at(Statistic::P50, 0.000_49), false);
    check(at(Statistic::Max, 0.001_02), true);
    check(at(Statistic::Mean, 0.000_49), false);
    check(at(Statistic::Count, 1000.0), true);
    check(at(Statistic::Count, 999.0), false);
}

#[test]
fn counters_gauges_and_rates() {
    check(
        Budget::at_least("requests_total", Statistic::Count, 500.0),
        true,
    );
    check(
        Budget::at_least("requests_total", Statistic::Count, 501.0),
        false,
    );
    check(Budget::at_least("hit_ratio", Statistic::Value, 0.9), true);
    check(Budget::at_most("hit_ratio", Statistic::Value, 0.9), false);
    // 500 requests within the registry's short uptime is a very high rate.
    check(
        Budget::at_least("requests_total", Statistic::Rate, 1.0),
        true,
    );
}

#[test]
fn a_missing_series_or_statistic_fails() {
    check(Budget::at_most("nope", Statistic::P99, 1.0), false);
    check(
        Budget::at_most("get_duration_seconds", Statistic::P99, 1.0),
        false,
    ); // no such labels
    check(Budget::at_most("hit_ratio", Statistic::P99, 1.0), false); // not a histogram
    let report = check_budgets(
        &registry().snapshot(),
        &[Budget::at_most("nope", Statistic::P99, 1.0)],
    );
    assert_eq!(report.results[0].actual, None);
    assert_eq!(
        report.to_string(),
        "FAIL nope{} P99 = missing (limit <= 1)\n"
    );
}

#[test]
fn budgets_from_toml_and_their_errors() {
    let budgets = Budget::parse_toml(
        r#"
        [[budget]]
        metric = "get_duration_seconds"
        labels = [["tier", "l1"]]
        statistic = "p99"
        limit = 0.002

        [[budget]]
        metric = "requests_total"
        statistic = "rate"
        limit = 1.0
        bound = "at_least"
        "#,
    )
    .unwrap();
    assert_eq!(budgets.len(), 2);
    assert!(check_budgets(&registry().snapshot(), &budgets).passed());

    let err = Budget::parse_toml("[[budget]]\nmetric = \"x\"\nstatistic = \"p42\"\nlimit = 1")
        .unwrap_err();
    assert!(err.to_string().contains("p42"), "{err}");
    let err = Budget::parse_toml("[[budget]]\nmetric = \"x\"\nstatistic = \"p99\"\nlimit = nan")
        .unwrap_err();
    assert!(err.to_string().contains("not finite"), "{err}");
}
