//! A real Prometheus server scrapes the HTTP endpoint; the figures are read back through
//! its query API.

use mpm_metrics::{Registry, Unit};
use mpm_testkit::prometheus::Prometheus;

pub(crate) fn scrapes_the_endpoint_and_answers_queries() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let registry = Registry::default();
    let cache = registry.scope("cache", "profiles").unwrap();
    let hits = cache
        .counter(
            "hits_total",
            "Lookups answered by a tier.",
            &[("tier", "l1")],
        )
        .unwrap();
    let pool = registry.scope("pool", "pg").unwrap();
    let acquire = pool
        .histogram(
            "acquire_seconds",
            "Time to get a connection.",
            Unit::Seconds,
            &[],
        )
        .unwrap();
    hits.add(20);
    for ms in 1..=21u64 {
        acquire.record(ms * 1_000_000);
    }
    let endpoint = rt
        .block_on(
            mpm_metrics::http::MetricsServer::builder(&registry)
                .listen("127.0.0.1:0".parse().unwrap())
                .bearer_token("scrape-token")
                .build(),
        )
        .unwrap();

    let prom = Prometheus::scrape(endpoint.local_addr(), Some("scrape-token"));

    // The target is up (the token was accepted), then the figures arrive as recorded.
    prom.wait_for("up{job=\"mpm\"}", 1.0);
    prom.wait_for("mpm_cache_hits_total{name=\"profiles\",tier=\"l1\"}", 20.0);
    prom.wait_for("mpm_pool_acquire_seconds_count{name=\"pg\"}", 21.0);
    prom.wait_for(
        "mpm_pool_acquire_seconds_bucket{name=\"pg\",le=\"0.01\"}",
        10.0,
    );
    // Recording goes on and the next scrapes see it.
    hits.add(5);
    prom.wait_for("mpm_cache_hits_total{name=\"profiles\",tier=\"l1\"}", 25.0);
    rt.block_on(endpoint.shutdown());
}
