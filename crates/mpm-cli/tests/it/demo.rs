//! `mpm demo`: a small run prints every figure as JSON; bad options are usage errors.

use std::process::Command;

const FIGURES: [&str; 17] = [
    "cold_start_ms",
    "warm_start_ms",
    "baseline_rss_mb",
    "peak_rss_mb",
    "discovery_fresh_ms",
    "discovery_cached_ms",
    "deploy_5_ms",
    "deploy_15_ms",
    "profile_disk_ms",
    "profile_cached_ms",
    "l1_hit_rate_pct",
    "l2_hit_rate_pct",
    "cache_access_avg_us",
    "memory_reduction_pct",
    "ws_connect_ms",
    "broadcast_50_ms",
    "update_latency_p99_ms",
];

fn mpm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mpm"))
}

#[test]
fn a_small_run_reports_every_figure_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("metrics.txt");
    let out = mpm()
        .args(["demo", "--json", "--scale", "small", "--metrics-out"])
        .arg(&metrics)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}); stderr: {stderr}"));
    let figures = report["figures"].as_array().unwrap();
    for name in FIGURES {
        let f = figures
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {report}"));
        for field in ["guide", "ours", "ratio"] {
            let v = f[field]
                .as_f64()
                .unwrap_or_else(|| panic!("{name}.{field}: {f}"));
            assert!(v.is_finite() && v >= 0.0, "{name}.{field} = {v}");
        }
        assert!(f["unit"].is_string() && f["ok"].is_boolean(), "{f}");
        assert!(f["budget"].is_null() || f["budget"].is_number(), "{f}");
    }
    assert_eq!(figures.len(), FIGURES.len());
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    // The exit code says whether every budget passed.
    let ok = report["budgets_ok"].as_bool().unwrap();
    assert_eq!(out.status.success(), ok, "stderr: {stderr}");
    assert_eq!(
        ok,
        figures.iter().all(|f| f["ok"].as_bool().unwrap()),
        "{report}"
    );
    // The run's exposition was written, with the figures and the parts' metrics.
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains("mpm_demo_figure{figure=\"cold_start_ms\"}"),
        "{text}"
    );
}

#[track_caller]
fn check_usage_error(args: &[&str], expect: &str) {
    let out = mpm().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(expect), "{args:?}: {stderr}");
}

#[test]
fn bad_options_are_usage_errors() {
    check_usage_error(&["demo", "--scale", "huge"], "is not a scale");
    check_usage_error(&["demo", "--scale", "0"], "is not a scale");
    check_usage_error(&["demo", "--serve", "localhost"], "invalid value");
}

#[test]
fn a_missing_budgets_file_is_named() {
    let out = mpm()
        .args([
            "demo",
            "--scale",
            "small",
            "--budgets",
            "/nonexistent/budgets.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/budgets.toml"), "{stderr}");
}

#[track_caller]
fn check_redis_refused(url: &str, expect: &[&str]) {
    let out = mpm()
        .args(["demo", "--json", "--scale", "small", "--redis", url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{url}: {stderr}");
    assert!(out.stdout.is_empty(), "{url}: a report was printed");
    assert!(!stderr.contains("panicked"), "{url}: {stderr}");
    assert!(
        !stderr.contains("secret"),
        "{url}: a password was printed: {stderr}"
    );
    for e in expect {
        assert!(stderr.contains(e), "{url}: {e:?} not in {stderr}");
    }
}

#[test]
fn a_redis_server_that_cannot_be_used_is_named_before_the_run() {
    // Nothing listens on port 1; the run stops before its first step.
    check_redis_refused(
        "redis://127.0.0.1:1",
        &["mpm demo: Redis at redis://127.0.0.1:1: the server does not answer"],
    );
    check_redis_refused(
        "not-a-url",
        &["mpm demo: Redis at not-a-url: invalid Redis URL"],
    );
    // A password is never printed.
    check_redis_refused(
        "redis://user:secret@127.0.0.1:1",
        &["Redis at redis://user:***@127.0.0.1:1"],
    );
}
