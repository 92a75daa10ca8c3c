//! The single-flight state machine under shuttle's randomized scheduler: every interleaving it
//! tries must finish (a stuck waiter is reported as a deadlock) with one loader run per value.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mpm_cache::{Clock, Error, MemoryTier, TieredCache};

fn cache() -> TieredCache<u32> {
    let (clock, _hand) = Clock::manual();
    TieredCache::builder()
        .l1(MemoryTier::builder().clock(clock))
        .build()
        .unwrap()
}

#[test]
fn concurrent_misses_run_one_loader() {
    shuttle::check_random(
        || {
            let c = cache();
            let runs = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let (c, runs) = (c.clone(), runs.clone());
                    shuttle::future::spawn(async move {
                        c.get_or_load("k", || async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            shuttle::future::yield_now().await;
                            Ok::<_, String>(7)
                        })
                        .await
                    })
                })
                .collect();
            shuttle::future::block_on(async {
                for t in tasks {
                    assert_eq!(t.await.unwrap().unwrap(), 7);
                }
            });
            assert_eq!(runs.load(Ordering::SeqCst), 1);
        },
        300,
    );
}

#[test]
fn errors_and_cancellations_leave_no_waiter_stuck() {
    shuttle::check_random(
        || {
            let c = cache();
            let tasks: Vec<_> = (0..4u32)
                .map(|i| {
                    let c = c.clone();
                    shuttle::future::spawn(async move {
                        c.get_or_load("k", || async move {
                            shuttle::future::yield_now().await;
                            if i == 0 {
                                Err("boom".to_owned())
                            } else {
                                Ok(i)
                            }
                        })
                        .await
                    })
                })
                .collect();
            tasks[1].abort();
            shuttle::future::block_on(async {
                for t in tasks {
                    match t.await {
                        Ok(Ok(v)) => assert!((1..4).contains(&v)),
                        Ok(Err(Error::Load { message, .. })) => assert_eq!(message, "boom"),
                        Ok(Err(e)) => panic!("unexpected error {e}"),
                        Err(_) => {} // the aborted task
                    }
                }
            });
            // Whatever happened, the key can be loaded afterwards.
            let v = shuttle::future::block_on(c.get_or_load("k", || async { Ok::<_, String>(9) }));
            assert!(v.is_ok());
        },
        300,
    );
}
