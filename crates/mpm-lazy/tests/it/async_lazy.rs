//! The asynchronous `AsyncLazy`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use futures::FutureExt;
use mpm_lazy::AsyncLazy;
use tokio::sync::Semaphore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_first_callers_cause_one_initialization() {
    const CALLERS: usize = 1_000;
    let calls = Arc::new(AtomicU32::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    // The init waits for this gate, which opens only once every caller is in `get_or_init`.
    let gate = Arc::new(Semaphore::new(0));
    let lazy = Arc::new(AsyncLazy::new({
        let (calls, gate) = (Arc::clone(&calls), Arc::clone(&gate));
        move || {
            let (calls, gate) = (Arc::clone(&calls), Arc::clone(&gate));
            async move {
                calls.fetch_add(1, Ordering::Relaxed);
                gate.acquire().await.expect("gate open").forget();
                Ok::<_, String>(7_u64)
            }
        }
    }));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (lazy, entered) = (Arc::clone(&lazy), Arc::clone(&entered));
            tokio::spawn(async move {
                entered.fetch_add(1, Ordering::SeqCst);
                *lazy.get_or_init().await.expect("built")
            })
        })
        .collect();
    while entered.load(Ordering::SeqCst) < CALLERS {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1);
    for task in tasks {
        assert_eq!(task.await.unwrap(), 7);
    }
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(lazy.stats().successes, 1);
}

#[tokio::test]
async fn a_failed_init_is_not_cached() {
    let calls = AtomicU32::new(0);
    let lazy = AsyncLazy::new(|| {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        async move {
            if n == 0 {
                Err("connection refused")
            } else {
                Ok(n)
            }
        }
    });
    assert_eq!(lazy.get_or_init().await, Err("connection refused"));
    assert_eq!(lazy.get(), None);
    assert_eq!(lazy.get_or_init().await, Ok(&1));
    assert_eq!(lazy.get(), Some(&1));
}

#[tokio::test]
async fn a_cancelled_init_poisons_nothing() {
    let gate = Semaphore::new(0);
    let calls = AtomicU32::new(0);
    let lazy = AsyncLazy::new(|| {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        let gate = &gate;
        async move {
            if n == 0 {
                // The first attempt hangs until it is cancelled.
                let _never = gate.acquire().await;
            }
            Ok::<_, ()>(n)
        }
    });
    // Poll the first call once (it starts the attempt and waits), then drop it: a cancellation.
    assert!(lazy.get_or_init().now_or_never().is_none());
    assert_eq!(lazy.stats().attempts, 1);
    assert_eq!(lazy.get(), None);
    assert_eq!(lazy.get_or_init().await, Ok(&1));
    let stats = lazy.stats();
    assert_eq!((stats.attempts, stats.failures, stats.successes), (2, 0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_init_poisons_nothing() {
    let calls = Arc::new(AtomicU32::new(0));
    let lazy = Arc::new(AsyncLazy::new({
        let calls = Arc::clone(&calls);
        move || {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            async move {
                assert!(n != 0, "the first attempt panics");
                Ok::<_, ()>(n)
            }
        }
    }));
    let panicked = tokio::spawn({
        let lazy = Arc::clone(&lazy);
        async move { lazy.get_or_init().await.copied() }
    })
    .await;
    assert!(panicked.unwrap_err().is_panic());
    assert_eq!(lazy.get_or_init().await, Ok(&1));
}

#[tokio::test]
async fn waiters_take_over_after_a_cancelled_attempt() {
    let gate = Arc::new(Semaphore::new(0));
    let calls = Arc::new(AtomicU32::new(0));
    let lazy = Arc::new(AsyncLazy::new({
        let (gate, calls) = (Arc::clone(&gate), Arc::clone(&calls));
        move || {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            let gate = Arc::clone(&gate);
            async move {
                gate.acquire().await.expect("open").forget();
                Ok::<_, ()>(n)
            }
        }
    }));
    let first = tokio::spawn({
        let lazy = Arc::clone(&lazy);
        async move { lazy.get_or_init().await.copied() }
    });
    let second = tokio::spawn({
        let lazy = Arc::clone(&lazy);
        async move { lazy.get_or_init().await.copied() }
    });
    while calls.load(Ordering::Relaxed) == 0 {
        tokio::task::yield_now().await;
    }
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    gate.add_permits(1);
    assert_eq!(
        second.await.unwrap(),
        Ok(1),
        "the waiter ran its own attempt"
    );
}

#[tokio::test]
async fn reset_rebuilds_the_value() {
    let calls = AtomicU32::new(0);
    let lazy = AsyncLazy::new(|| {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        async move { Ok::<_, ()>(format!("config v{n}")) }
    });
    let old = lazy.get_or_init().await.unwrap();
    assert!(lazy.reset());
    assert_eq!(lazy.get(), None);
    assert_eq!(lazy.get_or_init().await.unwrap(), "config v1");
    assert_eq!(old, "config v0");
    assert_eq!(lazy.generation(), 1);
}

#[tokio::test(start_paused = true)]
async fn backoff_waits_before_the_retry() {
    use std::time::Duration;
    let calls = AtomicU32::new(0);
    let lazy = AsyncLazy::new(|| {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        async move { if n < 2 { Err("down") } else { Ok(n) } }
    })
    .with_backoff(mpm_lazy::Backoff::exponential(
        Duration::from_secs(1),
        Duration::from_secs(60),
    ));
    let start = tokio::time::Instant::now();
    assert_eq!(lazy.get_or_init().await, Err("down"));
    assert_eq!(lazy.get_or_init().await, Err("down"));
    let waited = start.elapsed();
    assert!(
        waited > Duration::from_millis(990) && waited < Duration::from_millis(1010),
        "{waited:?}"
    );
    assert_eq!(lazy.get_or_init().await, Ok(&2));
    let waited = start.elapsed();
    assert!(
        waited > Duration::from_millis(2990) && waited < Duration::from_millis(3010),
        "1 s then 2 s: {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_racing_resets_see_whole_values_and_never_an_older_one_after_a_reset() {
    const READERS: usize = 6;
    const RESETS: u32 = 300;
    let calls = Arc::new(AtomicU32::new(0));
    let lazy = Arc::new(AsyncLazy::new({
        let calls = Arc::clone(&calls);
        move || {
            let seq = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::task::yield_now().await;
                Ok::<_, ()>((seq, u64::from(seq) * 3, format!("v{seq}")))
            }
        }
    }));
    let check = |value: &(u32, u64, String)| {
        assert_eq!(value.1, u64::from(value.0) * 3, "torn value {value:?}");
        assert_eq!(value.2, format!("v{}", value.0), "torn value {value:?}");
    };
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|reader| {
            let (lazy, done) = (Arc::clone(&lazy), Arc::clone(&done));
            tokio::spawn(async move {
                let mut reads = 0_u32;
                while !done.load(Ordering::SeqCst) || reads < 1_000 {
                    reads += 1;
                    if reader % 2 == 0 {
                        check(lazy.get_or_init().await.expect("infallible"));
                    } else if let Some(value) = lazy.get() {
                        check(value);
                    }
                    if reads.is_multiple_of(64) {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for _ in 0..RESETS {
        let started = calls.load(Ordering::SeqCst);
        lazy.reset();
        if let Some(value) = lazy.get() {
            check(value);
            assert!(
                value.0 >= started,
                "value {} of an older generation read after a reset (attempts before: {started})",
                value.0
            );
        }
        check(lazy.get_or_init().await.expect("infallible"));
    }
    done.store(true, Ordering::SeqCst);
    for reader in readers {
        reader.await.expect("no reader panics");
    }
    assert_eq!(lazy.generation(), u64::from(RESETS));
}

#[tokio::test]
async fn a_moved_async_lazy_reads_its_own_value() {
    let lazy = AsyncLazy::new(|| async { Ok::<_, ()>(String::from("built")) });
    let address: *const String = lazy.get_or_init().await.unwrap();
    let mut lazy = Box::new(lazy);
    assert_eq!(lazy.get().map(String::as_str), Some("built"));
    assert_eq!(lazy.get().unwrap() as *const String, address);
    lazy.reset();
    lazy.get_or_init().await.unwrap();
    lazy.compact();
    let mut lazy = *lazy;
    assert_eq!(lazy.get().map(String::as_str), Some("built"));
    assert_eq!(lazy.take().as_deref(), Some("built"));
    assert_eq!(lazy.get(), None);
}
