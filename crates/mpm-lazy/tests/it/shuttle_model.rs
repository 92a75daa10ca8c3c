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

/// A reset races attempts in flight: an attempt that started before the reset finishes into the
/// old generation's cell and may hand its value to the callers waiting on that cell, but that
/// value is never published as current, so `get` after the reset returns `None` or a newer value.
fn reset_never_republishes_an_older_value() {
    let calls = Arc::new(AtomicU32::new(0));
    let lazy = Arc::new(lazy(Arc::clone(&calls), |n| n == 1));
    // Attempts numbered below this started before the reset, for generation 0.
    let before_reset = Arc::new(AtomicU32::new(u32::MAX));
    let newer = |value: Option<&u32>, before: u32| value.is_none_or(|v| *v >= before);
    block_on(async {
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (lazy, before_reset) = (Arc::clone(&lazy), Arc::clone(&before_reset));
                spawn(async move {
                    for _ in 0..2 {
                        while lazy.get_or_init().await.is_err() {}
                        yield_now().await;
                        let before = before_reset.load(Ordering::SeqCst);
                        if lazy.generation() == 1 {
                            assert!(newer(lazy.get(), before), "an older value after a reset");
                        }
                    }
                })
            })
            .collect();
        let resetter = spawn({
            let (lazy, calls, before_reset) = (
                Arc::clone(&lazy),
                Arc::clone(&calls),
                Arc::clone(&before_reset),
            );
            async move {
                yield_now().await;
                let before = calls.load(Ordering::SeqCst);
                before_reset.store(before, Ordering::SeqCst);
                lazy.reset();
                assert!(
                    newer(lazy.get(), before),
                    "an older value right after the reset"
                );
                for _ in 0..4 {
                    yield_now().await;
                    assert!(
                        newer(lazy.get(), before),
                        "an older value published after the reset"
                    );
                }
            }
        });
        resetter.await.expect("no panic");
        for reader in readers {
            reader.await.expect("no panic");
        }
        let before = before_reset.load(Ordering::SeqCst);
        let value = loop {
            if let Ok(value) = lazy.get_or_init().await {
                break *value;
            }
        };
        assert!(
            value >= before,
            "the current value {value} is from generation 1"
        );
    });
}

#[test]
fn a_reset_racing_attempts_never_publishes_an_older_value() {
    shuttle::check_random(reset_never_republishes_an_older_value, 2_000);
    shuttle::check_pct(reset_never_republishes_an_older_value, 1_000, 3);
}
