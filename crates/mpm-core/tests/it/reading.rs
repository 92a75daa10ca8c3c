//! Reading the registry through `Mpm`: snapshot, budgets and the HTTP endpoint.

use std::time::Duration;

use mpm_core::{Budget, Mpm, Statistic, TieredCache};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn service() -> (Mpm, TieredCache<String>) {
    let mpm = Mpm::default();
    let cache: TieredCache<String> = mpm.cache("profiles").build().unwrap();
    cache.insert("agent:1", "engineer".to_owned());
    assert!(cache.get("agent:1").is_some());
    assert!(cache.get("agent:2").is_none());
    (mpm, cache)
}

#[test]
fn snapshot_reads_fresh_gauges() {
    let (mpm, cache) = service();
    let entries = [("name", "profiles"), ("tier", "l1")];
    let read = |mpm: &Mpm| {
        mpm.snapshot()
            .get("mpm_cache_entries", &entries)
            .unwrap()
            .as_f64()
    };
    assert_eq!(read(&mpm), 1.0);
    cache.insert("agent:2", "qa".to_owned());
    assert_eq!(read(&mpm), 2.0);
}

#[track_caller]
fn check_budget(budget: Budget, passes: bool) {
    let (mpm, _cache) = service();
    let report = mpm.check_budgets(&[budget]);
    assert_eq!(report.passed(), passes, "{report}");
}

#[test]
fn budgets_are_checked_against_the_registry_now() {
    let hits = [("name", "profiles"), ("tier", "l1")];
    let misses = [("name", "profiles")];
    check_budget(
        Budget::at_least("mpm_cache_hits_total", Statistic::Count, 1.0).with_labels(&hits),
        true,
    );
    check_budget(
        Budget::at_most("mpm_cache_misses_total", Statistic::Count, 0.0).with_labels(&misses),
        false,
    );
    // A budget on a series nobody exports fails rather than passing silently.
    check_budget(
        Budget::duration_at_most(
            "mpm_nothing_seconds",
            Statistic::P99,
            Duration::from_secs(1),
        ),
        false,
    );
}

/// `GET path` with an optional bearer token: the status line and the body.
async fn get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[tokio::test]
async fn serve_metrics_serves_the_registry() {
    let (mpm, _cache) = service();
    let server = mpm
        .serve_metrics("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (status, body) = get(server.local_addr(), "/metrics", None).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        body.contains("mpm_cache_hits_total{name=\"profiles\",tier=\"l1\"} 1\n"),
        "{body}"
    );
    let (status, body) = get(server.local_addr(), "/metrics.json", None).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("\"mpm_cache_misses_total\""), "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_server_listens_on_loopback_and_can_require_a_token() {
    let (mpm, _cache) = service();
    let server = mpm
        .metrics_server()
        .listen("127.0.0.1:0".parse().unwrap())
        .bearer_token("secret")
        .build()
        .await
        .unwrap();
    assert!(server.local_addr().ip().is_loopback());
    let (status, _) = get(server.local_addr(), "/metrics", None).await;
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    let (status, body) = get(server.local_addr(), "/metrics", Some("secret")).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("mpm_cache_entries{name=\"profiles\",tier=\"l1\"} 1\n"));
    server.shutdown().await;
    // Without an address the default one is loopback.
    assert!(mpm_core::metrics::http::DEFAULT_ADDR.ip().is_loopback());
}
