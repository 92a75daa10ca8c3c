//! The crate's metrics follow the `mpm_metrics::contract`: the table in `src/metrics.md`
//! matches the real exposition, histogram counts are exact, gauges are fresh at scrape time,
//! and a name is claimed once per registry.

use crate::nz;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use mpm_metrics::{Registry, contract};
use mpm_pool::keyed::{KeyedManager, KeyedPool};
use mpm_pool::{CircuitBreaker, ConfigError, Pool};

use crate::test_manager::TestManager;

const TABLE: &str = include_str!("../../src/metrics.md");

struct Sockets;

impl KeyedManager<u32> for Sockets {
    type Object = u32;
    type Error = std::io::Error;
    async fn create(&self, key: &u32) -> Result<u32, std::io::Error> {
        Ok(*key)
    }
}

/// The value of one sample line of the exposition.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

#[tokio::test]
async fn the_table_of_metrics_matches_the_exposition() {
    let registry = Registry::default();
    let m = TestManager::new();
    let breaker = CircuitBreaker::builder()
        .threshold(NonZeroU32::new(1).unwrap())
        .metrics(&registry, "db")
        .build()
        .unwrap();
    let pool = Pool::builder(std::sync::Arc::clone(&m))
        .max_size(nz(2))
        .min_idle(1)
        .circuit_breaker(breaker.clone())
        .metrics(&registry, "db")
        .build()
        .await
        .unwrap();
    drop(pool.get().await.unwrap());
    // A refused call and an opening, for the breaker's counters.
    assert!(breaker.try_begin());
    breaker.record_failure();
    assert!(!breaker.try_begin());
    let keyed = KeyedPool::builder(Sockets)
        .metrics(&registry, "clients")
        .build()
        .unwrap();
    drop(keyed.get(1).await.unwrap());

    let text = registry.render_prometheus();
    contract::check_metric_table(TABLE, &text, "mpm_pool_").unwrap();
    assert_eq!(
        sample(&text, "mpm_pool_breaker_opened_total{name=\"db\"}"),
        1.0
    );
    assert_eq!(
        sample(&text, "mpm_pool_breaker_refused_total{name=\"db\"}"),
        1.0
    );
    assert_eq!(sample(&text, "mpm_pool_breaker_state{name=\"db\"}"), 1.0);
}

#[tokio::test]
async fn histogram_counts_are_exact_and_gauges_fresh_at_scrape() {
    let registry = Registry::default();
    let pool = Pool::builder(TestManager::new())
        .max_size(nz(3))
        .metrics(&registry, "db")
        .build()
        .await
        .unwrap();
    for _ in 0..21 {
        drop(pool.get().await.unwrap());
    }
    let held = [pool.get().await.unwrap(), pool.get().await.unwrap()];
    // Nothing asks the pool for its status: the scrape reads it.
    let text = registry.render_prometheus();
    assert_eq!(
        sample(&text, "mpm_pool_acquire_seconds_count{name=\"db\"}"),
        23.0
    );
    assert_eq!(
        sample(&text, "mpm_pool_in_use_seconds_count{name=\"db\"}"),
        21.0
    );
    assert_eq!(
        sample(&text, "mpm_pool_create_seconds_count{name=\"db\"}"),
        2.0
    );
    assert_eq!(sample(&text, "mpm_pool_in_use{name=\"db\"}"), 2.0);
    assert_eq!(sample(&text, "mpm_pool_idle{name=\"db\"}"), 0.0);
    assert_eq!(sample(&text, "mpm_pool_available{name=\"db\"}"), 1.0);
    drop(held);
    let text = registry.render_prometheus();
    assert_eq!(
        sample(&text, "mpm_pool_in_use_seconds_count{name=\"db\"}"),
        23.0
    );
    assert_eq!(sample(&text, "mpm_pool_in_use{name=\"db\"}"), 0.0);
    assert_eq!(sample(&text, "mpm_pool_idle{name=\"db\"}"), 2.0);
}

/// The histograms' values, not only their counts: a get that waited 30 ms for an object held
/// 30 ms records both (read from the TSC, or Tokio's clock, as the wait started), in seconds.
#[tokio::test]
async fn histograms_record_how_long_a_get_waited_and_an_object_was_held() {
    let held_for = Duration::from_millis(30);
    let registry = Registry::default();
    let pool = Pool::builder(TestManager::new())
        .max_size(nz(1))
        .metrics(&registry, "db")
        .build()
        .await
        .unwrap();
    let held = pool.get().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { drop(pool.get().await.unwrap()) }
    });
    while pool.status().waiting == 0 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(held_for).await;
    drop(held);
    waiter.await.unwrap();
    let text = registry.render_prometheus();
    let count = |h: &str| sample(&text, &format!("mpm_pool_{h}_seconds_count{{name=\"db\"}}"));
    let sum = |h: &str| sample(&text, &format!("mpm_pool_{h}_seconds_sum{{name=\"db\"}}"));
    assert_eq!(count("acquire"), 2.0);
    assert_eq!(count("in_use"), 2.0);
    // Lower bounds (the histograms' values are within 1%), and upper ones far off to catch
    // a reading in the wrong unit.
    let at_least = held_for.as_secs_f64() * 0.99;
    assert!(
        (at_least..5.0).contains(&sum("acquire")),
        "acquire: {}",
        sum("acquire")
    );
    assert!(
        (at_least..5.0).contains(&sum("in_use")),
        "in use: {}",
        sum("in_use")
    );
}

#[tokio::test]
async fn the_keyed_pool_records_the_same_histograms_exactly() {
    let registry = Registry::default();
    let pool = KeyedPool::builder(Sockets)
        .max_per_key(nz(2))
        .metrics(&registry, "clients")
        .build()
        .unwrap();
    for _ in 0..5 {
        drop(pool.get(1).await.unwrap());
    }
    let held = [pool.get(1).await.unwrap(), pool.get(2).await.unwrap()];
    let text = registry.render_prometheus();
    let count = |what: &str| {
        sample(
            &text,
            &format!("mpm_pool_keyed_{what}_seconds_count{{name=\"clients\"}}"),
        )
    };
    assert_eq!(count("acquire"), 7.0, "every get");
    assert_eq!(count("in_use"), 5.0, "every lease returned");
    assert_eq!(count("create"), 2.0, "every creation");
    drop(held);
    let text = registry.render_prometheus();
    assert_eq!(
        sample(
            &text,
            "mpm_pool_keyed_in_use_seconds_count{name=\"clients\"}"
        ),
        7.0
    );
}

#[tokio::test]
async fn a_name_is_claimed_once_per_registry_and_released_with_the_pool() {
    let registry = Registry::default();
    let first = Pool::builder(TestManager::new())
        .metrics(&registry, "db")
        .build()
        .await
        .unwrap();
    let second = Pool::builder(TestManager::new())
        .metrics(&registry, "db")
        .build_lazy();
    assert!(matches!(second, Err(ConfigError::Metrics(_))));
    let keyed = || {
        KeyedPool::builder(Sockets)
            .max_total(NonZeroUsize::new(4).unwrap())
            .metrics(&registry, "db")
            .build()
    };
    // Another kind of component may use the same name.
    let k = keyed().unwrap();
    assert!(matches!(keyed(), Err(ConfigError::Metrics(_))));
    let breaker = || CircuitBreaker::builder().metrics(&registry, "db").build();
    let b = breaker().unwrap();
    assert!(breaker().is_err());
    drop((first, k, b));
    // The pool's state is gone once its last handle and task are: the name is free again.
    tokio::task::yield_now().await;
    assert!(
        Pool::builder(TestManager::new())
            .maintenance_interval(None)
            .metrics(&registry, "db")
            .build_lazy()
            .is_ok()
    );
    assert!(keyed().is_ok());
    assert!(breaker().is_ok());
    let _ = Duration::ZERO;
}
