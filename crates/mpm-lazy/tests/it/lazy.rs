//! The synchronous `Lazy`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mpm_lazy::{Backoff, InitStats, Lazy};
use mpm_metrics::{Registry, Unit};

#[test]
fn get_never_initializes() {
    let calls = AtomicU32::new(0);
    let lazy: Lazy<u32, (), _> = Lazy::new(|| {
        calls.fetch_add(1, Ordering::Relaxed);
        Ok(5)
    });
    assert_eq!(lazy.get(), None);
    assert!(!lazy.is_initialized());
    assert_eq!(calls.load(Ordering::Relaxed), 0);
    assert_eq!(lazy.get_or_init(), Ok(&5));
    assert_eq!(lazy.get(), Some(&5));
    assert_eq!(lazy.get_or_init(), Ok(&5));
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[test]
fn a_failed_init_is_retried_by_the_next_caller() {
    let calls = AtomicU32::new(0);
    let lazy = Lazy::new(|| match calls.fetch_add(1, Ordering::Relaxed) {
        0 | 1 => Err("attempt failed".to_owned()),
        n => Ok(n),
    });
    assert_eq!(lazy.get_or_init(), Err("attempt failed".to_owned()));
    assert_eq!(lazy.get(), None);
    assert_eq!(lazy.get_or_init(), Err("attempt failed".to_owned()));
    assert_eq!(lazy.get_or_init(), Ok(&2));
    assert_eq!(
        lazy.stats(),
        InitStats {
            attempts: 3,
            failures: 2,
            successes: 1,
            generation: 0
        }
    );
}

#[test]
fn a_panicking_init_poisons_nothing() {
    let first = AtomicBool::new(true);
    let lazy: Lazy<&str, (), _> = Lazy::new(|| {
        if first.swap(false, Ordering::Relaxed) {
            panic!("init blew up");
        }
        Ok("built")
    });
    let outcome = catch_unwind(AssertUnwindSafe(|| lazy.get_or_init().copied()));
    assert!(outcome.is_err(), "the panic reaches the caller");
    assert_eq!(lazy.get(), None);
    assert_eq!(lazy.get_or_init(), Ok(&"built"));
    let stats = lazy.stats();
    assert_eq!((stats.attempts, stats.failures, stats.successes), (2, 0, 1));
}

#[test]
fn reset_rebuilds_and_keeps_old_borrows_valid() {
    let calls = AtomicU32::new(0);
    let lazy: Lazy<String, (), _> =
        Lazy::new(|| Ok(format!("v{}", calls.fetch_add(1, Ordering::Relaxed))));
    let old = lazy.get_or_init().unwrap();
    assert!(lazy.reset());
    assert_eq!(lazy.generation(), 1);
    assert_eq!(lazy.get(), None, "after a reset the value is not built");
    assert_eq!(lazy.get_or_init().unwrap(), "v1");
    assert_eq!(
        old, "v0",
        "a borrow from before the reset still reads the old value"
    );
    assert_eq!(lazy.retained_generations(), 1);
    assert!(lazy.reset());
    assert!(!lazy.reset(), "nothing built since the last reset");
    assert_eq!(lazy.get_or_init().unwrap(), "v2");
    assert_eq!(lazy.generation(), 3);
}

#[test]
fn compact_drops_retained_values_and_keeps_the_current_one() {
    let token = Arc::new(());
    let lazy: Lazy<Arc<()>, (), _> = Lazy::new(|| Ok(Arc::clone(&token)));
    let mut lazy = lazy;
    for _ in 0..5 {
        lazy.get_or_init().unwrap();
        lazy.reset();
    }
    lazy.get_or_init().unwrap();
    assert_eq!(Arc::strong_count(&token), 7);
    lazy.compact();
    assert_eq!(Arc::strong_count(&token), 2);
    assert_eq!(lazy.retained_generations(), 0);
    assert!(lazy.is_initialized());
    lazy.reset();
    assert!(!lazy.is_initialized());
    lazy.compact();
    assert_eq!(Arc::strong_count(&token), 1);
    assert!(!lazy.is_initialized());
    assert!(lazy.take().is_none());
    lazy.get_or_init().unwrap();
    assert!(lazy.take().is_some());
    assert!(lazy.get().is_none());
}

#[test]
fn deref_and_force_for_infallible_inits() {
    static NAMES: Lazy<Vec<&str>> = Lazy::new(|| Ok(vec!["engineer", "qa"]));
    assert_eq!(NAMES.len(), 2);
    assert_eq!(NAMES.force()[1], "qa");
}

#[test]
fn a_thousand_concurrent_first_callers_cause_one_initialization() {
    const CALLERS: usize = 1_000;
    let calls = AtomicU32::new(0);
    let lazy: Lazy<u64, (), _> = Lazy::new(|| {
        calls.fetch_add(1, Ordering::Relaxed);
        std::thread::yield_now();
        Ok(42)
    });
    let start = Barrier::new(CALLERS);
    std::thread::scope(|scope| {
        for _ in 0..CALLERS {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn_scoped(scope, || {
                    start.wait();
                    assert_eq!(lazy.get_or_init(), Ok(&42));
                })
                .expect("spawn a thread");
        }
    });
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[test]
fn concurrent_callers_retry_failures_until_one_succeeds() {
    let calls = AtomicU32::new(0);
    let lazy: Lazy<u32, &str, _> = Lazy::new(|| {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        if n < 10 { Err("not yet") } else { Ok(n) }
    });
    let start = Barrier::new(32);
    std::thread::scope(|scope| {
        for _ in 0..32 {
            scope.spawn(|| {
                start.wait();
                while lazy.get_or_init().is_err() {}
                assert_eq!(lazy.get(), Some(&10));
            });
        }
    });
    let stats = lazy.stats();
    assert_eq!(
        (stats.attempts, stats.failures, stats.successes),
        (11, 10, 1)
    );
}

#[test]
fn backoff_delays_the_retry_not_the_read() {
    let delay = Duration::from_millis(40);
    let calls = AtomicU32::new(0);
    let lazy: Lazy<u32, &str, _> = Lazy::new(|| match calls.fetch_add(1, Ordering::Relaxed) {
        0 => Err("down"),
        n => Ok(n),
    })
    .with_backoff(Backoff::constant(delay));
    assert_eq!(lazy.get_or_init(), Err("down"));
    let started = Instant::now();
    assert_eq!(lazy.get(), None, "get does not wait");
    assert_eq!(lazy.get_or_init(), Ok(&1));
    assert!(
        started.elapsed() >= delay,
        "the retry waited {:?}",
        started.elapsed()
    );
}

#[test]
fn init_time_goes_into_the_registry() {
    let registry = Registry::default();
    let calls = AtomicU32::new(0);
    let lazy: Lazy<u32, &str, _> = Lazy::builder(|| match calls.fetch_add(1, Ordering::Relaxed) {
        0 => Err("down"),
        n => Ok(n),
    })
    .metrics(&registry, "agents_cache")
    .build()
    .unwrap();
    lazy.get_or_init().unwrap_err();
    lazy.get_or_init().unwrap();
    lazy.get_or_init().unwrap();
    let count = |outcome| {
        registry
            .histogram(
                "mpm_lazy_init_seconds",
                &[("name", "agents_cache"), ("outcome", outcome)],
                Unit::Seconds,
            )
            .unwrap()
            .snapshot()
            .count
    };
    assert_eq!((count("ok"), count("error")), (1, 1));
}

#[test]
fn debug_shows_the_value_and_generation() {
    let lazy: Lazy<u8, (), _> = Lazy::new(|| Ok(3));
    assert_eq!(
        format!("{lazy:?}"),
        "Lazy { value: None, generation: 0, .. }"
    );
    lazy.get_or_init().unwrap();
    assert_eq!(
        format!("{lazy:?}"),
        "Lazy { value: Some(3), generation: 0, .. }"
    );
}

/// A value whose fields must agree; a torn or freed value breaks the agreement.
#[derive(Debug)]
struct Versioned {
    seq: u32,
    double: u64,
    name: String,
}

impl Versioned {
    fn new(seq: u32) -> Self {
        Self {
            seq,
            double: u64::from(seq) * 2,
            name: format!("v{seq}"),
        }
    }

    fn check(&self) {
        assert_eq!(self.double, u64::from(self.seq) * 2, "torn value {self:?}");
        assert_eq!(self.name, format!("v{}", self.seq), "torn value {self:?}");
    }
}

#[test]
fn readers_racing_resets_see_whole_values_and_never_an_older_one_after_a_reset() {
    const READERS: usize = 6;
    const RESETTERS: usize = 2;
    const RESETS: u32 = 300;
    let calls = AtomicU32::new(0);
    let lazy: Lazy<Versioned, (), _> = Lazy::new(|| {
        let seq = calls.fetch_add(1, Ordering::SeqCst);
        // A slower init widens the window in which a reset overtakes an attempt.
        std::thread::yield_now();
        Ok(Versioned::new(seq))
    });
    let resetting = AtomicU32::new(RESETTERS as u32);
    std::thread::scope(|scope| {
        for reader in 0..READERS {
            let (lazy, resetting) = (&lazy, &resetting);
            scope.spawn(move || {
                // Borrows taken before resets stay valid until the `Lazy` is dropped.
                let mut kept = Vec::new();
                let mut reads = 0_u32;
                while resetting.load(Ordering::SeqCst) > 0 || reads < 1_000 {
                    reads += 1;
                    let value = if reader % 2 == 0 {
                        lazy.get_or_init().expect("infallible")
                    } else {
                        match lazy.get() {
                            Some(value) => value,
                            None => continue,
                        }
                    };
                    value.check();
                    if reads.is_multiple_of(256) {
                        kept.push(value);
                    }
                }
                for value in kept {
                    value.check();
                }
            });
        }
        for _ in 0..RESETTERS {
            let (lazy, resetting, calls) = (&lazy, &resetting, &calls);
            scope.spawn(move || {
                // Counts this resetter out even when it panics, so the readers stop.
                struct Done<'a>(&'a AtomicU32);
                impl Drop for Done<'_> {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                let _done = Done(resetting);
                for _ in 0..RESETS {
                    // An attempt numbered below `started` began before this reset, so it built a
                    // value for an older generation: `get` must not return it after the reset.
                    let started = calls.load(Ordering::SeqCst);
                    lazy.reset();
                    for _ in 0..4 {
                        if let Some(value) = lazy.get() {
                            value.check();
                            assert!(
                                value.seq >= started,
                                "value {} of an older generation read after a reset (attempts before: {started})",
                                value.seq
                            );
                        }
                        std::thread::yield_now();
                    }
                    lazy.get_or_init().expect("infallible").check();
                }
            });
        }
    });
    assert_eq!(lazy.generation(), u64::from(RESETTERS as u32 * RESETS));
    lazy.get_or_init().expect("infallible").check();
}

#[test]
fn a_moved_lazy_reads_its_own_value() {
    fn through_a_function<T>(value: T) -> T {
        value
    }
    type Init = Box<dyn Fn() -> Result<String, ()> + Send + Sync>;
    let make = |text: &'static str| -> Lazy<String, (), Init> {
        Lazy::new(Box::new(move || Ok(text.to_owned())))
    };
    let lazy = make("first");
    let address: *const String = lazy.get_or_init().unwrap();
    let lazy = through_a_function(Box::new(lazy));
    assert_eq!(lazy.get().map(String::as_str), Some("first"));
    assert_eq!(
        lazy.get().unwrap() as *const String,
        address,
        "the value stays where it was built"
    );

    // Moved to another thread and back.
    let lazy = std::thread::spawn(move || {
        assert_eq!(lazy.get().map(String::as_str), Some("first"));
        *lazy
    })
    .join()
    .unwrap();
    assert_eq!(lazy.get().map(String::as_str), Some("first"));

    // Two built values swapped in place: each reads its own.
    let mut a = lazy;
    let mut b = make("second");
    b.get_or_init().unwrap();
    std::mem::swap(&mut a, &mut b);
    assert_eq!(a.get().map(String::as_str), Some("second"));
    assert_eq!(b.get().map(String::as_str), Some("first"));

    // After a reset, a compaction (which moves the current cell inline) and a move.
    a.reset();
    assert_eq!(a.get(), None);
    assert_eq!(a.get_or_init().unwrap(), "second");
    a.compact();
    assert_eq!(a.retained_generations(), 0);
    let a = through_a_function(a);
    assert_eq!(a.get().map(String::as_str), Some("second"));

    // `take` empties the cell: nothing stale is read afterwards.
    let mut b = through_a_function(b);
    assert_eq!(b.take().as_deref(), Some("first"));
    assert_eq!(b.get(), None);
    assert_eq!(b.get_or_init().unwrap(), "first");
    assert_eq!(b.get().map(String::as_str), Some("first"));
}

#[test]
fn zero_sized_values() {
    let unit: Lazy<(), ()> = Lazy::new(|| Ok(()));
    assert_eq!(unit.get(), None);
    assert_eq!(unit.get_or_init(), Ok(&()));
    assert_eq!(unit.get(), Some(&()));
    assert!(unit.reset());
    assert_eq!(unit.get(), None);
}

#[test]
fn thread_safety_follows_the_value_type() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
    send::<Lazy<String, ()>>();
    sync::<Lazy<String, ()>>();
    unwind_safe::<Lazy<String, ()>>();
    // A value that may move between threads but not be shared: the `Lazy` may move too.
    send::<Lazy<std::cell::Cell<u32>, ()>>();
    send::<mpm_lazy::AsyncLazy<String, ()>>();
    sync::<mpm_lazy::AsyncLazy<String, ()>>();
}
