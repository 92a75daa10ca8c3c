//! What the service exports: exact, fresh, accepted by promtool, scraped by Prometheus.

use mpm_core::metrics::Exposition;
use mpm_testkit::prometheus::{Prometheus, promtool_check_metrics};

use crate::app::{self, AGENTS};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

#[track_caller]
fn check(text: &str, name: &str, labels: &[(&str, &str)], want: f64) {
    let got = Exposition::parse(text).unwrap().value(name, labels);
    assert_eq!(got, Some(want), "{name}{labels:?} in:\n{text}");
}

pub(crate) fn figures_are_exact_and_fresh() {
    let rt = runtime();
    let app = rt.block_on(app::start());
    let profiles = [("name", "profiles")];
    let l1 = [("name", "profiles"), ("tier", "l1")];
    let l2 = [("name", "profiles"), ("tier", "l2")];
    let pg = [("name", "pg")];

    // One get_or_load on an empty cache: one miss, not one per tier.
    rt.block_on(app.profile(0));
    let text = app.mpm.render_prometheus();
    check(&text, "mpm_cache_misses_total", &profiles, 1.0);
    check(&text, "mpm_cache_hits_total", &l1, 0.0);
    check(&text, "mpm_cache_hits_total", &l2, 0.0);
    check(&text, "mpm_cache_entries", &l1, 1.0);

    // The day's work (agent 0 is now a hit in its first round): the gauges follow without
    // any stats() call.
    rt.block_on(app.run_day());
    let text = app.mpm.render_prometheus();
    let n = AGENTS as f64;
    check(&text, "mpm_cache_misses_total", &profiles, n);
    check(&text, "mpm_cache_hits_total", &l1, 24.0 * n + 1.0);
    check(&text, "mpm_cache_hits_total", &l2, 0.0);
    check(&text, "mpm_cache_entries", &l1, n);
    check(&text, "mpm_cache_disk_entries", &profiles, n);
    check(
        &text,
        "mpm_cache_loads_total",
        &[("name", "profiles"), ("outcome", "ok")],
        n,
    );
    let parsed = Exposition::parse(&text).unwrap();

    // Every checkout is in the histograms' counts: 20 loads and one health check.
    check(&text, "mpm_pool_acquire_seconds_count", &pg, n + 1.0);
    check(&text, "mpm_pool_in_use_seconds_count", &pg, n + 1.0);
    check(&text, "mpm_pool_in_use", &pg, 0.0);
    let size = parsed.value("mpm_pool_size", &pg).unwrap();
    check(&text, "mpm_pool_idle", &pg, size);
    check(&text, "mpm_pool_breaker_state", &pg, 0.0);
    check(
        &text,
        "mpm_lazy_config_sections_parsed",
        &[("name", "service")],
        1.0,
    );
    assert_eq!(app.settings.parsed_sections(), 1);

    // A second component of the same kind and name is refused, not merged.
    let err = app.mpm.cache::<String>("profiles").build().unwrap_err();
    assert!(matches!(err, mpm_core::cache::Error::Metrics(_)), "{err:?}");
    let second_pool = app
        .mpm
        .pool(
            "pg",
            mpm_core::pool::postgres::PgManager::from_url(&mpm_testkit::Service::Postgres.url())
                .unwrap(),
        )
        .build_lazy();
    assert!(second_pool.is_err());
    // Another kind may use the name.
    rt.block_on(async {
        app.mpm
            .batcher::<u8, u8>(
                "profiles",
                std::num::NonZeroUsize::MIN,
                mpm_core::Overflow::Wait,
            )
            .build(|_| async { Ok::<_, std::io::Error>(()) })
            .unwrap()
            .shutdown()
            .await
            .unwrap();
    });
    if std::env::var_os("MPM_PRINT_EXPOSITION").is_some() {
        println!("{text}");
    }
}

pub(crate) fn promtool_accepts_the_whole_service() {
    let rt = runtime();
    let app = rt.block_on(app::start());
    rt.block_on(app.run_day());
    let text = app.mpm.render_prometheus();
    for prefix in [
        "mpm_cache_",
        "mpm_cache_disk_",
        "mpm_pool_",
        "mpm_pool_keyed_",
        "mpm_pool_breaker_",
        "mpm_lazy_",
        "mpm_lazy_registry_",
        "mpm_lazy_config_",
        "mpm_memory_opt_",
        "mpm_batch_",
    ] {
        assert!(
            text.contains(&format!("\n{prefix}")),
            "no {prefix}* in:\n{text}"
        );
    }
    if let Err(said) = promtool_check_metrics(&text) {
        panic!("{said}\n---\n{text}");
    }
}

pub(crate) fn prometheus_scrapes_serve_metrics() {
    let rt = runtime();
    let app = rt.block_on(app::start());
    rt.block_on(app.run_day());
    let endpoint = rt
        .block_on(app.mpm.serve_metrics("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    // The runtime's workers serve the endpoint while this thread polls Prometheus.
    let prometheus = Prometheus::scrape(endpoint.local_addr(), None);
    let n = AGENTS as f64;
    prometheus.wait_for("up{job=\"mpm\"}", 1.0);
    prometheus.wait_for(
        "mpm_cache_hits_total{name=\"profiles\",tier=\"l1\"}",
        24.0 * n,
    );
    prometheus.wait_for("mpm_pool_acquire_seconds_count{name=\"pg\"}", n + 1.0);
    prometheus.wait_for("mpm_cache_entries{name=\"profiles\",tier=\"l1\"}", n);
    // Work goes on and the next scrapes see it.
    rt.block_on(app.profile(0));
    prometheus.wait_for(
        "mpm_cache_hits_total{name=\"profiles\",tier=\"l1\"}",
        24.0 * n + 1.0,
    );
    rt.block_on(endpoint.shutdown());
}
