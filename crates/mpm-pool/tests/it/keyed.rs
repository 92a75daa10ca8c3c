//! The keyed pool: per-key and total maxima, eviction, dropped keys, fair waiters.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mpm_pool::Error;
use mpm_pool::keyed::{KeyedConfig, KeyedManager, KeyedObject, KeyedPool};

#[derive(Default)]
struct Clients {
    created: AtomicUsize,
    closed: AtomicUsize,
    live: AtomicUsize,
}

impl KeyedManager<String> for Clients {
    type Object = (String, usize);
    type Error = std::io::Error;

    async fn create(&self, key: &String) -> Result<(String, usize), std::io::Error> {
        self.live.fetch_add(1, Ordering::SeqCst);
        Ok((key.to_string(), self.created.fetch_add(1, Ordering::SeqCst)))
    }

    fn close(&self, _: &String, _: (String, usize)) {
        self.closed.fetch_add(1, Ordering::SeqCst);
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

fn k(key: &str) -> String {
    key.to_owned()
}

fn pool(max_per_key: usize, max_total: usize) -> KeyedPool<String, Arc<Clients>> {
    KeyedPool::new(
        Arc::new(Clients::default()),
        KeyedConfig {
            max_per_key,
            max_total,
            acquire_timeout: Some(Duration::from_millis(50)),
            ..KeyedConfig::default()
        },
    )
}

#[tokio::test]
async fn a_key_reuses_its_object_and_keys_are_separate() {
    let pool = pool(1, 10);
    let a = pool.get(k("a")).await.unwrap();
    assert_eq!(a.0, "a");
    let id = a.1;
    drop(a);
    assert_eq!(pool.get(k("a")).await.unwrap().1, id);
    assert_eq!(pool.get(k("b")).await.unwrap().0, "b");
    assert_eq!(pool.status().keys, 2);
}

#[tokio::test]
async fn the_per_key_maximum_holds_while_other_keys_proceed() {
    let pool = pool(2, 10);
    let _a1 = pool.get(k("a")).await.unwrap();
    let _a2 = pool.get(k("a")).await.unwrap();
    let err = pool.get(k("a")).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(pool.get(k("b")).await.is_ok());
    assert_eq!(pool.size_of(&k("a")), 2);
}

#[tokio::test]
async fn at_the_total_cap_an_idle_object_of_another_key_is_evicted() {
    let pool = pool(1, 2);
    drop(pool.get(k("a")).await.unwrap());
    drop(pool.get(k("b")).await.unwrap());
    let c = pool.get(k("c")).await.unwrap();
    let s = pool.status();
    assert_eq!((s.total, s.keys), (2, 2));
    assert_eq!(pool.manager().closed.load(Ordering::SeqCst), 1);
    assert_eq!(
        pool.size_of(&k("a")),
        0,
        "the key idle longest was evicted and dropped"
    );
    drop(c);
    // All lent: nothing to evict, so a new key waits and times out.
    let _b = pool.get(k("b")).await.unwrap();
    let _c = pool.get(k("c")).await.unwrap();
    assert!(pool.get(k("d")).await.is_err());
}

#[tokio::test]
async fn idle_keys_are_dropped() {
    let pool = pool(1, 4);
    drop(pool.get(k("a")).await.unwrap());
    drop(pool.get(k("b")).await.unwrap());
    assert_eq!(pool.evict_idle(Duration::ZERO), 2);
    let s = pool.status();
    assert_eq!((s.keys, s.total, s.idle), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_on_different_keys_are_served_in_order() {
    let pool = KeyedPool::new(
        Arc::new(Clients::default()),
        KeyedConfig {
            max_per_key: 1,
            max_total: 1,
            ..KeyedConfig::default()
        },
    );
    let held = pool.get(k("x")).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (i, key) in ["b", "c", "x", "d"].into_iter().enumerate() {
        let p = pool.clone();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let o = p.get(k(key)).await.unwrap();
            tx.send(KeyedObject::key(&o).to_string()).unwrap();
            drop(o);
        }));
        while pool.status().waiting < i + 1 {
            tokio::task::yield_now().await;
        }
    }
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    drop(tx);
    let mut order = Vec::new();
    while let Some(k) = rx.recv().await {
        order.push(k);
    }
    assert_eq!(order, ["b", "c", "x", "d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_with_timeouts_keeps_the_counts_and_leaks_nothing() {
    let pool = KeyedPool::new(
        Arc::new(Clients::default()),
        KeyedConfig {
            max_per_key: 2,
            max_total: 5,
            acquire_timeout: Some(Duration::from_millis(20)),
            ..KeyedConfig::default()
        },
    );
    let keys = ["a", "b", "c", "d", "e", "f", "g"];
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let p = pool.clone();
            tokio::spawn(async move {
                for j in 0..100 {
                    let key = keys[(i * 7 + j) % keys.len()];
                    let cancel = Duration::from_micros(((i * 13 + j * 7) % 300) as u64);
                    if let Ok(Ok(mut o)) = tokio::time::timeout(cancel, p.get(k(key))).await {
                        assert!(p.status().total <= 5);
                        assert!(p.size_of(&k(key)) <= 2);
                        if j % 11 == 0 {
                            KeyedObject::discard(&mut o);
                        }
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let s = pool.status();
    assert_eq!(s.total, s.idle, "{s:?}");
    assert_eq!(pool.manager().live.load(Ordering::SeqCst), s.total);
    assert!(s.total <= 5);
    pool.close();
    assert_eq!(pool.manager().live.load(Ordering::SeqCst), 0);
}
