//! `get_or_load`: single flight, errors, panics, cancellation; `warm`.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mpm_cache::{Error, TieredCache};
use tokio::sync::{Barrier, Notify};

fn cache() -> TieredCache<u64> {
    TieredCache::builder().build().unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn sixty_four_tasks_missing_one_key_run_the_loader_once() {
    rt().block_on(async {
        for round in 0..20 {
            let c = cache();
            let runs = Arc::new(AtomicUsize::new(0));
            let barrier = Arc::new(Barrier::new(64));
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    let (c, runs, barrier) = (c.clone(), runs.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        c.get_or_load("k", || async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            Ok::<_, String>(7)
                        })
                        .await
                    })
                })
                .collect();
            for t in tasks {
                assert_eq!(t.await.unwrap().unwrap(), 7);
            }
            assert_eq!(runs.load(Ordering::SeqCst), 1, "round {round}");
            let s = c.load_stats();
            assert_eq!((s.ok, s.failed), (1, 0));
        }
    });
}

#[test]
fn an_error_reaches_every_waiter_and_is_not_cached() {
    rt().block_on(async {
        let c = cache();
        let gate = Arc::new(Notify::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let leader = {
            let (c, gate, runs) = (c.clone(), gate.clone(), runs.clone());
            tokio::spawn(async move {
                c.get_or_load("k", || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    gate.notified().await;
                    Err::<u64, _>("backend down")
                })
                .await
            })
        };
        while runs.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(
                    async move { c.get_or_load("k", || async { Ok::<_, String>(1) }).await },
                )
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await; // let the waiters park (not a sync point)
        gate.notify_one();
        let e = leader.await.unwrap().unwrap_err();
        assert!(e.to_string().contains("backend down"), "{e}");
        for w in waiters {
            match w.await.unwrap() {
                Err(Error::Load { message, .. }) => assert_eq!(message, "backend down"),
                // A waiter that arrived after the failure runs its own loader.
                Ok(v) => assert_eq!(v, 1),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(c.load_stats().failed, 1);
        // Not cached: the next call loads again.
        let v = c
            .get_or_load("k2", || async { Ok::<_, String>(5) })
            .await
            .unwrap();
        assert_eq!(v, 5);
    });
}

#[test]
fn a_panicking_loader_leaves_no_waiter_stuck() {
    rt().block_on(async {
        let c = cache();
        let started = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let leader = {
            let (c, started, release) = (c.clone(), started.clone(), release.clone());
            tokio::spawn(async move {
                c.get_or_load("k", || async move {
                    started.notify_one();
                    release.notified().await;
                    panic!("loader exploded");
                    #[allow(unreachable_code)]
                    Ok::<u64, String>(0)
                })
                .await
            })
        };
        started.notified().await;
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.get_or_load("k", || async { Ok::<_, String>(1) }).await })
        };
        tokio::task::yield_now().await;
        release.notify_one();
        assert!(leader.await.unwrap_err().is_panic());
        let r = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("waiter stuck")
            .unwrap();
        assert!(
            matches!(r, Err(Error::LoadAbandoned { .. }) | Ok(1)),
            "{r:?}"
        );
        // The key is loadable afterwards.
        assert_eq!(
            c.get_or_load("k", || async { Ok::<_, String>(2) })
                .await
                .unwrap(),
            2
        );
    });
}

#[test]
fn a_cancelled_leader_hands_over_to_a_waiter() {
    rt().block_on(async {
        let c = cache();
        let started = Arc::new(Notify::new());
        let leader = {
            let (c, started) = (c.clone(), started.clone());
            tokio::spawn(async move {
                c.get_or_load("k", || async move {
                    started.notify_one();
                    std::future::pending::<()>().await;
                    Ok::<u64, String>(0)
                })
                .await
            })
        };
        started.notified().await;
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.get_or_load("k", || async { Ok::<_, String>(9) }).await })
        };
        tokio::task::yield_now().await;
        leader.abort();
        let r = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("waiter stuck")
            .unwrap();
        assert_eq!(r.unwrap(), 9);
    });
}

#[test]
fn a_load_racing_an_invalidation_is_not_cached() {
    rt().block_on(async {
        let c = cache();
        let c2 = c.clone();
        let v = c
            .get_or_load("k", || async move {
                c2.invalidate_prefix("k").unwrap();
                Ok::<_, String>(1)
            })
            .await
            .unwrap();
        assert_eq!(v, 1);
        assert_eq!(c.get("k"), None);
    });
}

#[test]
fn warm_loads_with_bounded_concurrency_and_reports_progress() {
    rt().block_on(async {
        let c = cache();
        c.insert("k0", 100);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut seen = Vec::new();
        let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
        let report = c
            .warm(
                keys,
                NonZeroUsize::new(4).unwrap(),
                |k| {
                    let (running, peak) = (running.clone(), peak.clone());
                    async move {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        if k == "k13" {
                            return Err("no k13".to_owned());
                        }
                        Ok(k[1..].parse::<u64>().unwrap())
                    }
                },
                |p| seen.push(p.done),
            )
            .await;
        assert_eq!(
            (report.done, report.failed, report.total),
            (50, 1, Some(50))
        );
        assert_eq!(seen, (1..=50).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 4);
        assert_eq!(c.get("k0"), Some(100), "cached keys are not reloaded");
        assert_eq!(c.get("k49"), Some(49));
        assert_eq!(c.get("k13"), None);
    });
}
