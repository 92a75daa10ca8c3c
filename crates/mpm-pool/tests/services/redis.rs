//! The Redis manager against the local server: connections killed while idle.

use std::time::Duration;

use mpm_pool::Pool;
use mpm_pool::redis::RedisManager;

use mpm_testkit::Service;

pub(crate) async fn connections_killed_while_idle_are_replaced_without_errors() {
    let url = Service::Redis.url();
    let registry = mpm_metrics::Registry::default();
    let period = Duration::from_millis(300);
    let window = Duration::from_millis(50);
    let pool = Pool::builder(RedisManager::new(url.as_str()).unwrap())
        .max_size(3)
        .min_idle(3)
        .skip_validation_within(window)
        .maintenance_interval(Some(period))
        .metrics(&registry, "redis")
        .build()
        .await
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(pool.get().await.unwrap());
    }
    let mut ids = Vec::new();
    for c in &mut held {
        ids.push(
            redis::cmd("CLIENT")
                .arg("ID")
                .query_async::<i64>(&mut **c)
                .await
                .unwrap(),
        );
    }
    drop(held);

    let client = redis::Client::open(url.as_str()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    for id in &ids {
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(*id)
            .query_async(&mut admin)
            .await
            .unwrap();
        assert_eq!(killed, 1);
    }
    // The maintenance period starts counting when the connections are dead.
    let killed = tokio::time::Instant::now();
    // The idle objects are now older than the skip-validation window, so they are checked.
    tokio::time::sleep(window * 2).await;

    for i in 0..10 {
        let mut c = pool.get().await.unwrap();
        let key = format!("mpm-pool-test-{i}");
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(i)
            .query_async(&mut *c)
            .await
            .unwrap();
        let () = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut *c)
            .await
            .unwrap_or(());
    }
    let invalid = registry
        .snapshot()
        .get(
            "pool_closed_total",
            &[("pool", "redis"), ("reason", "invalid")],
        )
        .map_or(0.0, |v| v.as_f64());
    assert!(
        (1.0..=3.0).contains(&invalid),
        "{invalid} failed validations"
    );
    // Back at min_idle within one maintenance period of the kill: each acquire that finds a
    // dead connection closes it, and the close wakes the maintenance task to refill at once. The slack is for creating the connections on a busy machine.
    let deadline = killed + period + Duration::from_millis(100);
    while pool.status().idle < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            pool.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(pool.status().size <= 3);
}

pub(crate) async fn ping_validates_a_live_connection() {
    let url = Service::Redis.url();
    let pool = Pool::builder(RedisManager::new(url.as_str()).unwrap())
        .max_size(1)
        .skip_validation_within(Duration::ZERO)
        .maintenance_interval(None)
        .build()
        .await
        .unwrap();
    for _ in 0..3 {
        drop(pool.get().await.unwrap());
    }
    assert_eq!(pool.status().size, 1);
}
