//! The Prometheus text exposition and the JSON snapshot, checked as text.

use expect_test::expect;
use mpm_metrics::{Registry, Unit};

fn sample_registry() -> Registry {
    let r = Registry::default();
    r.describe("requests_total", "Requests served.\nPer route \\ method.")
        .unwrap();
    r.counter("requests_total", &[("route", "/a\"b"), ("method", "GET")])
        .unwrap()
        .add(3);
    r.counter(
        "requests_total",
        &[("route", "line\nbreak\\"), ("method", "PUT")],
    )
    .unwrap()
    .inc();
    r.gauge("load", &[]).unwrap().set(0.75);
    r.int_gauge("in_flight", &[("pool", "pg")]).unwrap().set(-2);
    let h = r
        .histogram("size_bytes", &[("kind", "profile")], Unit::Bytes)
        .unwrap();
    for v in [0, 1, 3, 100, 1000] {
        h.record(v);
    }
    let d = r
        .histogram("op_duration_seconds", &[], Unit::Seconds)
        .unwrap();
    d.record(1_500); // 1.5 us
    r
}

#[test]
fn prometheus_text_exposition() {
    expect![[r##"
        # HELP in_flight No help text was given for this metric.
        # TYPE in_flight gauge
        in_flight{pool="pg"} -2
        # HELP load No help text was given for this metric.
        # TYPE load gauge
        load 0.75
        # HELP op_duration_seconds No help text was given for this metric.
        # TYPE op_duration_seconds histogram
        op_duration_seconds_bucket{le="1e-6"} 0
        op_duration_seconds_bucket{le="5e-6"} 1
        op_duration_seconds_bucket{le="0.00001"} 1
        op_duration_seconds_bucket{le="0.00005"} 1
        op_duration_seconds_bucket{le="0.0001"} 1
        op_duration_seconds_bucket{le="0.0005"} 1
        op_duration_seconds_bucket{le="0.001"} 1
        op_duration_seconds_bucket{le="0.005"} 1
        op_duration_seconds_bucket{le="0.01"} 1
        op_duration_seconds_bucket{le="0.05"} 1
        op_duration_seconds_bucket{le="0.1"} 1
        op_duration_seconds_bucket{le="0.5"} 1
        op_duration_seconds_bucket{le="1.0"} 1
        op_duration_seconds_bucket{le="5.0"} 1
        op_duration_seconds_bucket{le="10.0"} 1
        op_duration_seconds_bucket{le="+Inf"} 1
        op_duration_seconds_sum 1.4955e-6
        op_duration_seconds_count 1
        # HELP requests_total Requests served.\nPer route \\ method.
        # TYPE requests_total counter
        requests_total{method="GET",route="/a\"b"} 3
        requests_total{method="PUT",route="line\nbreak\\"} 1
        # HELP size_bytes No help text was given for this metric.
        # TYPE size_bytes histogram
        size_bytes_bucket{kind="profile",le="64.0"} 3
        size_bytes_bucket{kind="profile",le="256.0"} 4
        size_bytes_bucket{kind="profile",le="1024.0"} 5
        size_bytes_bucket{kind="profile",le="4096.0"} 5
        size_bytes_bucket{kind="profile",le="16384.0"} 5
        size_bytes_bucket{kind="profile",le="65536.0"} 5
        size_bytes_bucket{kind="profile",le="262144.0"} 5
        size_bytes_bucket{kind="profile",le="1048576.0"} 5
        size_bytes_bucket{kind="profile",le="4194304.0"} 5
        size_bytes_bucket{kind="profile",le="16777216.0"} 5
        size_bytes_bucket{kind="profile",le="67108864.0"} 5
        size_bytes_bucket{kind="profile",le="268435456.0"} 5
        size_bytes_bucket{kind="profile",le="1073741824.0"} 5
        size_bytes_bucket{kind="profile",le="+Inf"} 5
        size_bytes_sum{kind="profile"} 1102.5
        size_bytes_count{kind="profile"} 5
    "##]]
    .assert_eq(&sample_registry().render_prometheus());
}

#[test]
fn json_snapshot() {
    let snap = sample_registry().snapshot();
    let mut json: serde_json::Value = serde_json::from_str(&snap.to_json()).unwrap();
    // Uptime changes from run to run.
    json["uptime_seconds"] = serde_json::Value::Null;
    expect![[r#"
        {
          "metrics": [
            {
              "kind": "int_gauge",
              "name": "in_flight",
              "series": [
                {
                  "labels": {
                    "pool": "pg"
                  },
                  "value": -2
                }
              ],
              "unit": "none"
            },
            {
              "kind": "gauge",
              "name": "load",
              "series": [
                {
                  "labels": {},
                  "value": 0.75
                }
              ],
              "unit": "none"
            },
            {
              "kind": "histogram",
              "name": "op_duration_seconds",
              "series": [
                {
                  "labels": {},
                  "value": {
                    "count": 1,
                    "max": 1.4955e-6,
                    "mean": 1.4955e-6,
                    "min": 1.4955e-6,
                    "p50": 1.4955e-6,
                    "p90": 1.4955e-6,
                    "p99": 1.4955e-6,
                    "p999": 1.4955e-6,
                    "sum": 1.4955e-6
                  }
                }
              ],
              "unit": "seconds"
            },
            {
              "help": "Requests served.\nPer route \\ method.",
              "kind": "counter",
              "name": "requests_total",
              "series": [
                {
                  "labels": {
                    "method": "GET",
                    "route": "/a\"b"
                  },
                  "value": 3
                },
                {
                  "labels": {
                    "method": "PUT",
                    "route": "line\nbreak\\"
                  },
                  "value": 1
                }
              ],
              "unit": "none"
            },
            {
              "kind": "histogram",
              "name": "size_bytes",
              "series": [
                {
                  "labels": {
                    "kind": "profile"
                  },
                  "value": {
                    "count": 5,
                    "max": 998.5,
                    "mean": 220.5,
                    "min": 0.0,
                    "p50": 3.0,
                    "p90": 998.5,
                    "p99": 998.5,
                    "p999": 998.5,
                    "sum": 1102.5
                  }
                }
              ],
              "unit": "bytes"
            }
          ],
          "uptime_seconds": null
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&json).unwrap());
}
