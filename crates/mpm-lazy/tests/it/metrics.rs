//! The crate's table of metrics matches what it exports, and the figures are exact and fresh.

use std::panic::{AssertUnwindSafe, catch_unwind};

use mpm_lazy::{
    AsyncLazy, Error, Format, Lazy, LazyConfig, LazyRegistry, Reload, Resolver, Service,
};
use mpm_metrics::{Registry, contract};

const TABLE: &str = include_str!("../../src/metrics.md");

/// Drives every metric of the table once, then checks the table against the exposition.
#[tokio::test]
async fn the_table_lists_every_exported_metric() {
    let registry = Registry::default();
    let lazy = Lazy::builder(|| Ok::<_, &str>(1))
        .metrics(&registry, "config")
        .build()
        .unwrap();
    lazy.get_or_init().unwrap();
    lazy.reset();
    let async_lazy = AsyncLazy::builder(|| async { Ok::<_, &str>(2) })
        .metrics(&registry, "profiles")
        .build()
        .unwrap();
    async_lazy.get_or_init().await.unwrap();
    let services = LazyRegistry::builder()
        .register_fn("db", |_: &Resolver| Ok(3_u8))
        .metrics(&registry, "services")
        .build()
        .unwrap();
    services.get::<u8>("db").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mpm.json");
    std::fs::write(&path, r#"{"server": {"port": 1}}"#).unwrap();
    let config = LazyConfig::builder(&path)
        .metrics(&registry, "app")
        .build()
        .unwrap();
    config.section::<serde_json::Value>("server").unwrap();
    config.reload().unwrap();

    let text = registry.render_prometheus();
    contract::check_metric_table(TABLE, &text, "mpm_lazy_").unwrap();
}

#[test]
fn every_attempt_is_counted_by_outcome_including_panics() {
    let registry = Registry::default();
    let calls = std::sync::atomic::AtomicU32::new(0);
    let lazy: Lazy<u32, &str, _> =
        Lazy::builder(
            || match calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
                0 => Err("down"),
                1 => panic!("init panicked"),
                n => Ok(n),
            },
        )
        .metrics(&registry, "agents")
        .build()
        .unwrap();
    lazy.get_or_init().unwrap_err();
    catch_unwind(AssertUnwindSafe(|| lazy.get_or_init())).unwrap_err();
    lazy.get_or_init().unwrap();
    lazy.reset();
    lazy.get_or_init().unwrap();

    let text = registry.render_prometheus();
    for line in [
        "mpm_lazy_init_seconds_count{name=\"agents\",outcome=\"ok\"} 2\n",
        "mpm_lazy_init_seconds_count{name=\"agents\",outcome=\"error\"} 1\n",
        "mpm_lazy_init_seconds_count{name=\"agents\",outcome=\"abandoned\"} 1\n",
        "mpm_lazy_resets_total{name=\"agents\"} 1\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    assert_eq!(lazy.stats().attempts, 4);
}

#[tokio::test]
async fn a_cancelled_async_attempt_is_counted_as_abandoned() {
    let registry = Registry::default();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let started_tx = std::sync::Mutex::new(Some(started_tx));
    let lazy = AsyncLazy::builder(move || {
        let started = started_tx.lock().unwrap().take();
        async move {
            if let Some(started) = started {
                let _ = started.send(());
                std::future::pending::<()>().await;
            }
            Ok::<_, &str>(7)
        }
    })
    .metrics(&registry, "slow")
    .build()
    .unwrap();
    let lazy = std::sync::Arc::new(lazy);
    let task_lazy = std::sync::Arc::clone(&lazy);
    let first = tokio::spawn(async move { task_lazy.get_or_init().await.copied() });
    started_rx.await.unwrap();
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    assert_eq!(*lazy.get_or_init().await.unwrap(), 7);
    let text = registry.render_prometheus();
    assert!(
        text.contains("mpm_lazy_init_seconds_count{name=\"slow\",outcome=\"abandoned\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("mpm_lazy_init_seconds_count{name=\"slow\",outcome=\"ok\"} 1\n"));
}

#[test]
fn the_registry_gauges_are_fresh_at_scrape_time() {
    let registry = Registry::default();
    let services = LazyRegistry::builder()
        .register_fn("db", |_: &Resolver| Ok(1_u8))
        .register(
            "deployer",
            Service::from_fn("new", |_| Err("missing".into())).or_fn("legacy", |_| Ok(2_u8)),
        )
        .metrics(&registry, "services")
        .build()
        .unwrap();
    let built = |registry: &Registry| {
        registry
            .snapshot()
            .get(
                "mpm_lazy_registry_services_initialized",
                &[("name", "services")],
            )
            .map(|v| v.as_f64())
    };
    assert_eq!(built(&registry), Some(0.0));
    services.get::<u8>("db").unwrap();
    assert_eq!(built(&registry), Some(1.0), "no call to stats() was needed");
    services.get::<u8>("deployer").unwrap();
    assert_eq!(built(&registry), Some(2.0));
    let text = registry.render_prometheus();
    assert!(text.contains("mpm_lazy_registry_services{name=\"services\"} 2\n"));
    assert!(text.contains(
        "mpm_lazy_registry_init_seconds_count{implementation=\"new\",name=\"services\",outcome=\"error\",service=\"deployer\"} 1\n"
    ), "{text}");
}

#[test]
fn a_second_component_of_one_name_fails_at_build() {
    let registry = Registry::default();
    let _first = Lazy::builder(|| Ok::<_, &str>(1))
        .metrics(&registry, "config")
        .build()
        .unwrap();
    let second = Lazy::builder(|| Ok::<_, &str>(2))
        .metrics(&registry, "config")
        .build();
    assert!(matches!(second, Err(Error::Metrics { .. })));
    let _services = LazyRegistry::builder()
        .metrics(&registry, "config")
        .build()
        .expect("a lazy registry is another kind of component");
    let again = LazyRegistry::builder().metrics(&registry, "config").build();
    assert!(matches!(again, Err(Error::Metrics { .. })));
}

#[test]
fn dropping_a_lazy_value_releases_its_name() {
    let registry = Registry::default();
    let first = Lazy::builder(|| Ok::<_, &str>(1))
        .metrics(&registry, "config")
        .build()
        .unwrap();
    drop(first);
    Lazy::builder(|| Ok::<_, &str>(2))
        .metrics(&registry, "config")
        .build()
        .unwrap();
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Server {
    port: u16,
}

#[test]
fn configuration_parses_and_reloads_are_counted_and_sections_are_fresh() {
    let registry = Registry::default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings");
    std::fs::write(&path, r#"{"server": {"port": 1}, "memory": {"limit": 2}}"#).unwrap();
    let config = LazyConfig::builder(&path)
        .format(Format::Json)
        .metrics(&registry, "app")
        .build()
        .unwrap();
    let sections = |registry: &Registry| {
        registry
            .snapshot()
            .get("mpm_lazy_config_sections_parsed", &[("name", "app")])
            .map(|v| v.as_f64())
    };
    assert_eq!(sections(&registry), Some(0.0));
    config.section::<Server>("server").unwrap();
    config.section::<Server>("server").unwrap();
    config.section::<Server>("memory").unwrap_err();
    assert_eq!(sections(&registry), Some(1.0));
    assert_eq!(config.reload().unwrap(), Reload::Unchanged);
    std::fs::write(&path, r#"{"server": {"port": 3}}"#).unwrap();
    assert_eq!(config.reload().unwrap(), Reload::Applied { reparsed: 1 });
    std::fs::write(&path, r#"{"server": {"port": "x"}}"#).unwrap();
    config.reload().unwrap_err();

    let text = registry.render_prometheus();
    for line in [
        "mpm_lazy_config_section_parse_seconds_count{name=\"app\",outcome=\"ok\"} 1\n",
        "mpm_lazy_config_section_parse_seconds_count{name=\"app\",outcome=\"error\"} 1\n",
        "mpm_lazy_config_reloads_total{name=\"app\",outcome=\"unchanged\"} 1\n",
        "mpm_lazy_config_reloads_total{name=\"app\",outcome=\"applied\"} 1\n",
        "mpm_lazy_config_reloads_total{name=\"app\",outcome=\"refused\"} 1\n",
        "mpm_lazy_config_sections_parsed{name=\"app\"} 1\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    let again = LazyConfig::builder(&path)
        .format(Format::Json)
        .metrics(&registry, "app")
        .build();
    assert!(matches!(again, Err(Error::Metrics { .. })));
}
