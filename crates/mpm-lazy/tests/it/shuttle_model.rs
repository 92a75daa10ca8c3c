//! Shuttle models of the `AsyncLazy` state machine: many tasks race to initialize, attempts fail,
//! get cancelled or race a reset, under thousands of random and PCT schedules. Shuttle fails a
//! test on a deadlock (every task blocked), so "nobody waits forever" is checked too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use futures::FutureExt;
use mpm_lazy::AsyncLazy;
use shuttle::future::{block_on, spawn, yield_now};

type Init =
    Box<dyn Fn() -> futures::future::BoxFuture<'static, Result<u32, &'static str>> + Send + Sync>;

/// An init whose attempt number `n` yields a few times, then fails when `fails(n)`.
fn lazy(calls: Arc<AtomicU32>, fails: fn(u32) -> bool) -> AsyncLazy<u32, &'static str, Init> {
    AsyncLazy::new(Box::new(move || {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            yield_now().await;
            yield_now().await;
            if fails(n) { Err("transient") } else { Ok(n) }
        }
        .boxed()
    }))
}

fn racing_callers(fails: fn(u32) -> bool, cancel_one: bool) {
    let calls = Arc::new(AtomicU32::new(0));
    let lazy = Arc::new(lazy(Arc::clone(&calls), fails));
    block_on(async {
        let mut tasks = Vec::new();
        for task in 0..4 {
            let lazy = Arc::clone(&lazy);
            tasks.push(spawn(async move {
                if cancel_one && task == 0 {
                    // Start an attempt (or join the wait) and walk away from it.
                    let _ = lazy.get_or_init().now_or_never();
                    return None;
                }
                loop {
                    match lazy.get_or_init().await {
                        Ok(value) => return Some(*value),
                        Err(_) => yield_now().await,
                    }
                }
            }));
        }
        let mut seen = Vec::new();
        for task in tasks {
            seen.extend(task.await.expect("no task panics"));
        }
        let winner = *lazy.get().expect("built once every task returned");
        assert!(
            seen.iter().all(|v| *v == winner),
            "every caller sees the one value: {seen:?}"
        );
        let stats = lazy.stats();
        assert_eq!(stats.successes, 1, "exactly one successful attempt");
        assert_eq!(u64::from(calls.load(Ordering::SeqCst)), stats.attempts);
    });
}

#[test]
fn one_success_among_racing_callers() {
    shuttle::check_random(|| racing_callers(|_| false, false), 2_000);
    shuttle::check_pct(|| racing_callers(|_| false, false), 1_000, 3);
}

#[test]
fn failures_are_retried_not_cached() {
    shuttle::check_random(|| racing_callers(|n| n < 2, false), 2_000);
    shuttle::check_pct(|| racing_callers(|n| n % 2 == 0, false), 1_000, 3);
}

#[test]
fn a_cancelled_caller_blocks_nobody() {
    shuttle::check_random(|| racing_callers(|_| false, true), 2_000);
    shuttle::check_pct(|| racing_callers(|n| n == 1, true), 1_000, 3);
}

fn reset_races_readers() {
    let calls = Arc::new(AtomicU32::new(0));
    let lazy = Arc::new(lazy(Arc::clone(&calls), |_| false));
    block_on(async {
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let lazy = Arc::clone(&lazy);
                spawn(async move {
                    let first = *lazy.get_or_init().await.expect("never fails");
                    let second = *lazy.get_or_init().await.expect("never fails");
                    (first, second)
                })
            })
            .collect();
        let resetter = spawn({
            let lazy = Arc::clone(&lazy);
            async move {
                yield_now().await;
                lazy.reset();
            }
        });
        resetter.await.expect("no panic");
        for reader in readers {
            let (first, second) = reader.await.expect("no panic");
            assert!(
                first <= second,
                "values never go back to an older generation"
            );
        }
        let stats = lazy.stats();
        assert_eq!(stats.generation, 1);
        assert!(
            stats.successes <= 2,
            "at most one success per generation: {stats:?}"
        );
        assert_eq!(stats.attempts, stats.successes);
    });
}

#[test]
fn reset_during_initialization() {
    shuttle::check_random(reset_races_readers, 2_000);
    shuttle::check_pct(reset_races_readers, 1_000, 3);
}
