//! The Redis manager against the local server: connections killed while idle.

use crate::nz;
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
        .max_size(nz(3))
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
            "mpm_pool_closed_total",
            &[("name", "redis"), ("reason", "invalid")],
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
        .max_size(nz(1))
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

/// The ids of the server's connections named `name`.
async fn connections_named(admin: &mut redis::aio::MultiplexedConnection, name: &str) -> Vec<i64> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(admin)
        .await
        .unwrap();
    list.lines()
        .filter(|line| line.split(' ').any(|field| field == format!("name={name}")))
        .filter_map(|line| {
            let id = line.split(' ').find_map(|f| f.strip_prefix("id="))?;
            id.parse().ok()
        })
        .collect()
}

/// Fault: 32 tasks loop get / `PING` / drop on 8 connections and the server kills every one
/// of the pool's connections. Each killed connection fails one command at most (the one in
/// flight, or the next one on it), is closed when it comes back, and is never handed out
/// again; the pool then serves without errors and holds as many connections as the server
/// has from it. Before, a release stamped the object alive and the manager had no broken
/// check, so the dead connections were lent again and again (over a million errors a
/// second).
pub(crate) async fn connections_killed_in_use_fail_once_each_and_are_replaced() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let url = Service::Redis.url();
    let name = format!("mpm-pool-kill-{}", std::process::id());
    let max_size = 8;
    let pool = Pool::builder(
        RedisManager::new(url.as_str())
            .unwrap()
            .client_name(name.as_str()),
    )
    .max_size(nz(max_size))
    .acquire_timeout(Some(Duration::from_secs(5)))
    .build()
    .await
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let oks = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (pool, stop, oks, errors) = (
            pool.clone(),
            Arc::clone(&stop),
            Arc::clone(&oks),
            Arc::clone(&errors),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let result = match pool.get().await {
                    Ok(mut c) => redis::cmd("PING")
                        .query_async::<String>(&mut *c)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match result {
                    Ok(()) => {
                        oks.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => errors.lock().push((tokio::time::Instant::now(), e)),
                }
            }
        }));
    }
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    // Under load, with every connection made.
    while pool.status().size < max_size || oks.load(Ordering::Relaxed) < 1000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ids = connections_named(&mut admin, &name).await;
    assert_eq!(ids.len(), max_size, "{ids:?}");
    let killed = tokio::time::Instant::now();
    let oks_at_kill = oks.load(Ordering::Relaxed);
    for id in &ids {
        let _: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(*id)
            .query_async(&mut admin)
            .await
            .unwrap();
    }
    // The load runs on until a thousand more calls succeed: the pool is back in service (the
    // bound is generous, for a loaded machine; a pool that hands out dead connections never
    // gets there).
    tokio::time::timeout(Duration::from_secs(20), async {
        while oks.load(Ordering::Relaxed) <= oks_at_kill + 1000 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "20 s after the kill, {} calls had succeeded since",
            oks.load(Ordering::Relaxed) - oks_at_kill
        )
    });
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let errors = errors.lock().clone();
    assert!(
        errors.len() <= max_size,
        "{} errors after killing {max_size} connections, the first: {:?}",
        errors.len(),
        errors.first()
    );
    assert!(errors.iter().all(|(at, _)| *at >= killed), "{errors:?}");
    let healed = errors.iter().map(|(at, _)| *at - killed).max();
    eprintln!(
        "{} errors, the last {healed:?} after the kill",
        errors.len()
    );
    // The pool's connections are the server's.
    let s = pool.status();
    let live = connections_named(&mut admin, &name).await;
    assert_eq!(s.size, live.len(), "{s:?}, {live:?}");
    assert!(live.iter().all(|id| !ids.contains(id)));
}
