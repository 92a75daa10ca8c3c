//! `mpm demo` against the real servers: `--redis URL` puts the profile cache's shared tier on
//! Redis and reports its figures.
//!
//! Skipped (shown as ignored with the reason) without a Redis server at `MPM_REDIS_URL`
//! (default `redis://127.0.0.1:6379`), unless `CI` or `MPM_REQUIRE_SERVICES` is set.

use std::process::{Command, ExitCode};

use mpm_testkit::Service;

fn main() -> ExitCode {
    mpm_testkit::run([mpm_testkit::test(
        "demo::redis_figures_are_reported",
        redis_figures_are_reported,
    )
    .needs(Service::Redis)])
}

#[track_caller]
fn number(report: &serde_json::Value, field: &str) -> f64 {
    report["redis"][field]
        .as_f64()
        .unwrap_or_else(|| panic!("redis.{field} missing or not a number: {report}"))
}

fn redis_figures_are_reported() {
    let url = Service::Redis.url();
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("metrics.txt");
    let out = Command::new(env!("CARGO_BIN_EXE_mpm"))
        .args(["demo", "--json", "--scale", "small", "--redis", &url])
        .arg("--metrics-out")
        .arg(&metrics)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}); stderr: {stderr}"));
    // The exit code is the budgets' verdict (this machine may miss one), never a failure of
    // the run itself.
    assert_eq!(
        out.status.success(),
        report["budgets_ok"].as_bool().unwrap(),
        "stderr: {stderr}"
    );
    assert_eq!(report["redis"]["url"], url.as_str(), "{report}");

    // The L1 misses went to Redis, and some of them were answered there.
    let l2 = number(&report, "l2_hit_rate_pct");
    assert!(l2 > 0.0 && l2 <= 100.0, "L2 hit rate {l2}");
    let main_l2 = report["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "l2_hit_rate_pct")
        .unwrap()["ours"]
        .as_f64()
        .unwrap();
    assert_eq!(l2, main_l2, "the L2 of the run is the Redis tier");

    // Gets through the tier: round trips on loopback, in order.
    assert_eq!(number(&report, "gets"), 1_000.0);
    let (p50, p99) = (number(&report, "get_p50_us"), number(&report, "get_p99_us"));
    assert!(0.0 < p50 && p50 <= p99, "get p50 {p50} us, p99 {p99} us");
    assert!(
        p99 < 100_000.0,
        "a get took {p99} us: above the tier's 100 ms timeout"
    );

    // Invalidations made by one instance, applied by the other within the bus's bound.
    assert_eq!(number(&report, "invalidations"), 50.0);
    let (i50, i99) = (
        number(&report, "invalidation_p50_ms"),
        number(&report, "invalidation_p99_ms"),
    );
    let bound = number(&report, "staleness_bound_ms");
    assert!(
        0.0 < i50 && i50 <= i99,
        "invalidation p50 {i50} ms, p99 {i99} ms"
    );
    assert!(
        i99 <= bound,
        "invalidation p99 {i99} ms above the bus's bound {bound} ms"
    );

    // The tier and the bus report in the run's exposition, beside the cache.
    let text = std::fs::read_to_string(&metrics).unwrap();
    for series in [
        "mpm_cache_redis_hits_total{name=\"profiles\"}",
        "mpm_cache_bus_published_total{name=\"profiles\"}",
        "mpm_cache_bus_received_total{name=\"profiles_peer\",outcome=\"applied\"}",
    ] {
        assert!(
            text.contains(series),
            "{series} missing from the exposition"
        );
    }
}
