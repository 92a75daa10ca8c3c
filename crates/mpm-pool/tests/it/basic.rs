//! Behaviour of the pool without faults: reuse, order, validation, lifetimes, close, resize.

use crate::nz;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mpm_pool::{Builder, ConfigError, Error, Manager, Object, Pool, QueueMode, Stage, manager};

use crate::test_manager::TestManager;

fn builder(m: &Arc<TestManager>) -> Builder<Arc<TestManager>> {
    Pool::builder(Arc::clone(m)).maintenance_interval(None)
}

/// A task that gets an object from `pool` and gives back its id.
fn spawn_get<M>(pool: &Pool<M>) -> tokio::task::JoinHandle<Result<u64, Error<M::Error>>>
where
    M: Manager<Object = u64> + 'static,
{
    let pool = pool.clone();
    tokio::spawn(async move { pool.get().await.map(|o| *o) })
}

/// Yields until `n` callers wait in `pool`'s queue.
async fn until_waiting<M: Manager>(pool: &Pool<M>, n: usize) {
    while pool.status().waiting < n {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_returned_object_is_reused() {
    let m = TestManager::new();
    let pool = builder(&m).max_size(nz(2)).build().await.unwrap();
    let first = pool.get().await.unwrap();
    let id = *first;
    assert_eq!(pool.status().in_use, 1);
    drop(first);
    assert_eq!(pool.status().idle, 1);
    assert_eq!(*pool.get().await.unwrap(), id);
    assert_eq!(m.created.load(Ordering::SeqCst), 1);
    // The second use recycled it and skipped validation (used within 500 ms).
    assert_eq!(m.recycled.load(Ordering::SeqCst), 1);
    assert_eq!(m.validated.load(Ordering::SeqCst), 0);
}

#[track_caller]
fn check_order(mode: QueueMode, expect_first: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let m = TestManager::new();
        let pool = builder(&m)
            .max_size(nz(3))
            .queue_mode(mode)
            .build()
            .await
            .unwrap();
        let held = [
            pool.get().await.unwrap(),
            pool.get().await.unwrap(),
            pool.get().await.unwrap(),
        ];
        let ids: Vec<u64> = held.iter().map(|o| **o).collect();
        drop(held); // returned in order 0, 1, 2
        assert_eq!(*pool.get().await.unwrap(), ids[expect_first]);
    });
}

#[test]
fn fifo_hands_out_the_object_idle_longest() {
    check_order(QueueMode::Fifo, 0);
}

#[test]
fn lifo_hands_out_the_object_returned_last() {
    check_order(QueueMode::Lifo, 2);
}

#[tokio::test]
async fn a_discarded_object_is_closed_and_replaced() {
    let m = TestManager::new();
    let registry = mpm_metrics::Registry::default();
    let pool = builder(&m)
        .max_size(nz(1))
        .metrics(&registry, "t")
        .build()
        .await
        .unwrap();
    let mut o = pool.get().await.unwrap();
    let id = *o;
    Object::discard(&mut o);
    drop(o);
    assert_eq!(m.closed.load(Ordering::SeqCst), 1);
    assert_ne!(*pool.get().await.unwrap(), id);
    let snap = registry.snapshot();
    let closed = snap
        .get(
            "mpm_pool_closed_total",
            &[("name", "t"), ("reason", "discarded")],
        )
        .unwrap()
        .as_f64();
    assert_eq!(closed, 1.0);
}

#[tokio::test]
async fn a_broken_object_is_closed_on_release() {
    let m = TestManager::new();
    let pool = builder(&m).max_size(nz(1)).build().await.unwrap();
    let o = pool.get().await.unwrap();
    m.broken.store(true, Ordering::SeqCst);
    drop(o);
    assert_eq!(pool.status().size, 0);
    assert_eq!(m.closed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn validation_is_skipped_within_the_window_only() {
    let m = TestManager::new();
    let pool = builder(&m)
        .max_size(nz(1))
        .skip_validation_within(Duration::ZERO)
        .build()
        .await
        .unwrap();
    drop(pool.get().await.unwrap());
    drop(pool.get().await.unwrap());
    assert_eq!(m.recycled.load(Ordering::SeqCst), 1);
    assert_eq!(m.validated.load(Ordering::SeqCst), 1);
    let pool = builder(&m)
        .max_size(nz(1))
        .skip_validation_within(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    drop(pool.get().await.unwrap());
    drop(pool.get().await.unwrap());
    assert_eq!(m.validated.load(Ordering::SeqCst), 1, "no new validation");
}

#[tokio::test]
async fn a_failed_recycle_replaces_the_object_without_an_error() {
    let m = TestManager::new();
    let pool = builder(&m).max_size(nz(2)).build().await.unwrap();
    let id = *pool.get().await.unwrap();
    m.fail_recycle.store(true, Ordering::SeqCst);
    let o = pool.get().await.unwrap();
    assert_ne!(*o, id);
    assert_eq!(m.closed.load(Ordering::SeqCst), 1);
}

/// A manager whose recycle does nothing, so that validation is what checks an idle object.
struct ValidateOnly(Arc<TestManager>);

impl mpm_pool::Manager for ValidateOnly {
    type Object = u64;
    type Error = crate::test_manager::TestError;
    async fn create(&self) -> Result<u64, Self::Error> {
        self.0.create().await
    }
    async fn validate(&self, o: &mut u64) -> Result<(), Self::Error> {
        self.0.validate(o).await
    }
    fn close(&self, o: u64) {
        self.0.close(o)
    }
}

#[tokio::test(start_paused = true)]
async fn idle_objects_are_validated_after_the_window_and_replaced_if_invalid() {
    let m = TestManager::new();
    let pool = Pool::builder(ValidateOnly(Arc::clone(&m)))
        .maintenance_interval(None)
        .max_size(nz(2))
        .skip_validation_within(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let id = *pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    m.fail_validate.store(true, Ordering::SeqCst);
    let o = pool.get().await.unwrap();
    assert_ne!(*o, id, "the invalid object was replaced");
    assert!(m.validated.load(Ordering::SeqCst) >= 1);
    assert_eq!(m.closed.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn objects_past_their_lifetime_are_replaced() {
    let m = TestManager::new();
    let registry = mpm_metrics::Registry::default();
    let pool = builder(&m)
        .max_size(nz(1))
        .max_lifetime(Some(Duration::from_secs(10)))
        .metrics(&registry, "t")
        .build()
        .await
        .unwrap();
    let id = *pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_millis(9_400)).await; // below the 5% jitter
    assert_eq!(*pool.get().await.unwrap(), id);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_ne!(*pool.get().await.unwrap(), id);
    let snap = registry.snapshot();
    let lifetime = snap
        .get(
            "mpm_pool_closed_total",
            &[("name", "t"), ("reason", "lifetime")],
        )
        .unwrap()
        .as_f64();
    assert_eq!(lifetime, 1.0);
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_never_goes_below_min_idle() {
    let m = TestManager::new();
    let pool = builder(&m)
        .max_size(nz(4))
        .min_idle(1)
        .idle_timeout(Some(Duration::from_secs(60)))
        .build()
        .await
        .unwrap();
    let held: Vec<_> = vec![
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
    ];
    drop(held);
    assert_eq!(pool.status().idle, 3);
    tokio::time::sleep(Duration::from_secs(61)).await;
    pool.run_maintenance().await;
    let s = pool.status();
    assert_eq!((s.size, s.idle), (1, 1));
}

#[tokio::test]
async fn min_idle_is_created_at_build() {
    let m = TestManager::new();
    let pool = builder(&m)
        .max_size(nz(4))
        .min_idle(3)
        .build()
        .await
        .unwrap();
    assert_eq!(pool.status().idle, 3);
    assert_eq!(m.created.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn maintenance_refills_min_idle_after_a_discard() {
    let m = TestManager::new();
    let pool = Pool::builder(Arc::clone(&m))
        .maintenance_interval(Some(Duration::from_secs(30)))
        .max_size(nz(4))
        .min_idle(2)
        .build()
        .await
        .unwrap();
    let mut o = pool.get().await.unwrap();
    Object::discard(&mut o);
    drop(o);
    // The close woke the task; one short pause lets it run.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(pool.status().idle, 2);
}

#[tokio::test]
async fn acquire_times_out_when_all_objects_are_held() {
    let m = TestManager::new();
    let registry = mpm_metrics::Registry::default();
    let pool = builder(&m)
        .max_size(nz(1))
        .metrics(&registry, "t")
        .build()
        .await
        .unwrap();
    let _held = pool.get().await.unwrap();
    let err = pool
        .get_timeout(Some(Duration::from_millis(20)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                stage: Stage::Acquire,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(pool.status().waiting, 0);
    let snap = registry.snapshot();
    let t = snap
        .get(
            "mpm_pool_timeouts_total",
            &[("name", "t"), ("stage", "acquire")],
        )
        .unwrap()
        .as_f64();
    assert_eq!(t, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_in_arrival_order() {
    let m = TestManager::new();
    let pool = builder(&m).max_size(nz(1)).build().await.unwrap();
    let held = pool.get().await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let p = pool.clone();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let o = p.get().await.unwrap();
            tx.send(i).unwrap();
            drop(o);
        }));
        // Each waiter is queued before the next one starts.
        until_waiting(&pool, i + 1).await;
    }
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    drop(tx);
    let mut order = Vec::new();
    while let Some(i) = rx.recv().await {
        order.push(i);
    }
    assert_eq!(order, (0..8).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_never_exceeds_max_under_stress() {
    let m = TestManager::new();
    let pool = builder(&m).max_size(nz(4)).build().await.unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for j in 0..200 {
                    let mut o = pool.get().await.unwrap();
                    assert!(pool.status().size <= 4);
                    if (i + j) % 17 == 0 {
                        Object::discard(&mut o);
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(m.max_live.load(Ordering::SeqCst) <= 4);
    let s = pool.status();
    assert_eq!((s.in_use, s.creating, s.waiting), (0, 0, 0));
    assert!(s.size <= 4);
}

#[tokio::test]
async fn close_fails_waiters_and_closes_objects_as_they_return() {
    let m = TestManager::new();
    let pool = builder(&m).max_size(nz(1)).build().await.unwrap();
    let held = pool.get().await.unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(|_| ()) })
    };
    while pool.status().waiting == 0 {
        tokio::task::yield_now().await;
    }
    let closer = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.close_and_wait(Duration::from_secs(5)).await })
    };
    assert!(matches!(waiter.await.unwrap(), Err(Error::Closed)));
    assert!(matches!(pool.get().await, Err(Error::Closed)));
    drop(held);
    assert!(closer.await.unwrap());
    assert_eq!(pool.status().size, 0);
    assert_eq!(m.live.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn resize_grows_and_shrinks() {
    let m = TestManager::new();
    let pool = builder(&m).max_size(nz(2)).build().await.unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    pool.resize(nz(3)).unwrap();
    let c = pool.get().await.unwrap();
    pool.resize(nz(1)).unwrap();
    drop((a, b, c));
    let s = pool.status();
    assert_eq!((s.size, s.max_size), (1, 1));
    let _one = pool.get().await.unwrap();
    assert!(
        pool.get_timeout(Some(Duration::from_millis(20)))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn bad_settings_are_refused() {
    let m = TestManager::new();
    let err = builder(&m)
        .max_size(nz(1))
        .min_idle(2)
        .build_lazy()
        .unwrap_err();
    assert_eq!(
        err,
        ConfigError::MinIdleAboveMax {
            min_idle: 2,
            max_size: 1
        }
    );
    let err = builder(&m)
        .acquire_timeout(Some(Duration::ZERO))
        .build_lazy()
        .unwrap_err();
    assert_eq!(err, ConfigError::ZeroDuration("acquire_timeout"));
    // A pool of min_idle 2 cannot shrink below 2.
    let pool = builder(&m)
        .min_idle(2)
        .max_size(nz(2))
        .build()
        .await
        .unwrap();
    assert!(pool.resize(nz(1)).is_err());
}

#[tokio::test]
async fn take_removes_the_object_from_the_pool() {
    let m = TestManager::new();
    let pool = builder(&m).max_size(nz(1)).build().await.unwrap();
    let o = pool.get().await.unwrap();
    assert_eq!(Object::take(o), Some(0));
    assert_eq!(pool.status().size, 0);
    assert_eq!(*pool.get().await.unwrap(), 1);
}

/// A pool of `manager`, whose objects are valid while they read "x", hands out "x" again
/// after one was changed: validation closes the changed one.
async fn check_fn_manager<M: Manager<Object = String>>(manager: M) {
    let pool = Pool::builder(manager)
        .skip_validation_within(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let mut o = pool.get().await.unwrap();
    o.push('y'); // now invalid
    drop(o);
    // Validation finds it invalid, closes it and the caller gets a fresh one.
    assert_eq!(pool.get().await.unwrap().as_str(), "x");
}

#[tokio::test]
async fn from_fns_builds_and_validates() {
    check_fn_manager(manager::from_fns(
        || async { Ok::<_, std::io::Error>(String::from("x")) },
        |s: &String| s == "x",
    ))
    .await;
}

#[tokio::test]
async fn the_trait_spelling_manager_from_fns_builds_and_validates() {
    check_fn_manager(Manager::from_fns(
        || async { Ok::<_, std::io::Error>(String::from("x")) },
        |s: &String| s == "x",
    ))
    .await;
}

#[tokio::test]
async fn statistics_series_are_recorded() {
    let m = TestManager::new();
    let registry = mpm_metrics::Registry::default();
    let pool = builder(&m)
        .max_size(nz(3))
        .min_idle(2)
        .metrics(&registry, "db")
        .build()
        .await
        .unwrap();
    drop(pool.get().await.unwrap());
    let snap = registry.snapshot();
    let l = [("name", "db")];
    let get = |n: &str| snap.get(n, &l).unwrap().as_f64();
    assert_eq!(get("mpm_pool_created_total"), 2.0);
    assert_eq!(get("mpm_pool_size"), 2.0);
    assert_eq!(get("mpm_pool_idle"), 2.0);
    assert_eq!(get("mpm_pool_max_size"), 3.0);
    for h in [
        "mpm_pool_acquire_seconds",
        "mpm_pool_in_use_seconds",
        "mpm_pool_create_seconds",
    ] {
        assert!(snap.get(h, &l).is_some(), "{h}");
    }
}

#[tokio::test]
async fn returning_an_object_is_allocation_free_and_so_is_a_warm_get() {
    let m = TestManager::new();
    let registry = mpm_metrics::Registry::default();
    let pool = builder(&m)
        .max_size(nz(2))
        .min_idle(2)
        .metrics(&registry, "t")
        .leak_detection(Some(Duration::from_secs(60)))
        .build()
        .await
        .unwrap();
    // Warm up (the lease table grows once).
    for _ in 0..4 {
        drop(pool.get().await.unwrap());
    }
    let o = pool.get().await.unwrap();
    let before = mpm_metrics::thread_stats();
    drop(o);
    let after = mpm_metrics::thread_stats();
    assert!(mpm_metrics::CountingAllocator::is_active());
    assert_eq!(after.since(&before).allocations, 0, "release allocated");
    let before = mpm_metrics::thread_stats();
    for _ in 0..100 {
        drop(pool.get().await.unwrap());
    }
    let after = mpm_metrics::thread_stats();
    assert_eq!(
        after.since(&before).allocations,
        0,
        "get and drop allocated"
    );
}

#[tokio::test(start_paused = true)]
async fn keepalive_validates_idle_objects_and_replaces_dead_ones() {
    let m = TestManager::new();
    let pool = Pool::builder(Arc::clone(&m))
        .max_size(nz(2))
        .min_idle(1)
        .keepalive(Some(Duration::from_secs(10)))
        .idle_timeout(None)
        .maintenance_interval(Some(Duration::from_secs(1)))
        .build()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(m.validated.load(Ordering::SeqCst) >= 1, "keepalive ran");
    m.fail_validate.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(12)).await;
    m.fail_validate.store(false, Ordering::SeqCst);
    assert!(
        m.closed.load(Ordering::SeqCst) >= 1,
        "the dead object was closed"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pool.status().idle, 1, "and replaced");
}

#[test]
fn building_outside_a_runtime_with_maintenance_is_an_error_not_a_panic() {
    let m = TestManager::new();
    let err = Pool::builder(Arc::clone(&m)).build_lazy().unwrap_err();
    assert_eq!(err, ConfigError::NoRuntime);
    assert!(
        builder(&m).build_lazy().is_ok(),
        "without maintenance it needs no runtime"
    );
}

#[tokio::test]
async fn dropping_the_last_pool_handle_closes_it() {
    let m = TestManager::new();
    let pool = Pool::builder(Arc::clone(&m))
        .max_size(nz(3))
        .min_idle(2)
        .build()
        .await
        .unwrap();
    let held = pool.get().await.unwrap();
    drop(pool);
    assert_eq!(
        m.live.load(Ordering::SeqCst),
        1,
        "the idle object was closed"
    );
    drop(held);
    assert_eq!(
        m.live.load(Ordering::SeqCst),
        0,
        "the lent one on its return"
    );
}

/// With maintenance on, a wait for a permit sets its timer only near its deadline; it still
/// ends at the deadline.
#[tokio::test(start_paused = true)]
async fn a_swept_wait_times_out_at_its_deadline() {
    let m = TestManager::new();
    let pool = Pool::builder(Arc::clone(&m))
        .max_size(nz(1))
        .min_idle(1)
        .build()
        .await
        .unwrap();
    let held = pool.get().await.unwrap();
    let timeout = Duration::from_secs(2);
    let start = tokio::time::Instant::now();
    let err = pool.get_timeout(Some(timeout)).await.unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(
            err,
            Error::Timeout {
                stage: Stage::Acquire,
                ..
            }
        ),
        "{err}"
    );
    assert!(took >= timeout, "timed out early: {took:?}");
    assert!(took <= timeout + Duration::from_millis(5), "late: {took:?}");
    assert_eq!(pool.status().waiting, 0);
    // A swept waiter is served as soon as the object comes back.
    let pool2 = pool.clone();
    let waiter = tokio::spawn(async move { pool2.get().await.map(|o| *o) });
    tokio::time::sleep(Duration::from_millis(750)).await;
    drop(held);
    assert!(waiter.await.unwrap().is_ok());
}

/// Waits `timeout` for the only object of `pool` (held elsewhere) and says how long the wait
/// took, after checking that it timed out.
async fn timed_out_wait(pool: Pool<Arc<TestManager>>, timeout: Duration) -> Duration {
    let start = tokio::time::Instant::now();
    let err = tokio::time::timeout(timeout * 10, pool.get_timeout(Some(timeout)))
        .await
        .expect("the wait ended by its own deadline")
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    start.elapsed()
}

/// Swept waiters say when they must be woken; one with a later deadline must not hide an
/// earlier one's, in either order of arrival.
#[tokio::test(start_paused = true)]
async fn swept_waits_with_different_deadlines_each_end_at_their_own() {
    let m = TestManager::new();
    let pool = Pool::builder(Arc::clone(&m))
        .max_size(nz(1))
        .min_idle(1)
        .build()
        .await
        .unwrap();
    let _held = pool.get().await.unwrap();
    for timeouts in [[10, 2], [2, 5]] {
        let mut waits = Vec::new();
        for secs in timeouts {
            let timeout = Duration::from_secs(secs);
            waits.push((timeout, tokio::spawn(timed_out_wait(pool.clone(), timeout))));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for (timeout, wait) in waits {
            let took = wait.await.unwrap();
            assert!(
                took >= timeout && took <= timeout + Duration::from_millis(5),
                "a {timeout:?} wait took {took:?}"
            );
        }
    }
    assert_eq!(pool.status().waiting, 0);
}

/// A manager whose creations after the first never finish.
struct StuckAfterFirst(std::sync::atomic::AtomicUsize);

impl mpm_pool::Manager for StuckAfterFirst {
    type Object = u64;
    type Error = std::convert::Infallible;
    async fn create(&self) -> Result<u64, Self::Error> {
        if self.0.fetch_add(1, Ordering::SeqCst) > 0 {
            std::future::pending::<()>().await;
        }
        Ok(0)
    }
}

/// The waiters are swept while a maintenance pass is stuck (here a refill whose creation
/// never finishes, with no create timeout), so their deadlines still hold.
#[tokio::test(start_paused = true)]
async fn waits_time_out_while_a_maintenance_pass_is_stuck() {
    let pool = Pool::builder(StuckAfterFirst(Default::default()))
        .max_size(nz(1))
        .min_idle(1)
        .create_timeout(None)
        .build()
        .await
        .unwrap();
    let mut o = pool.get().await.unwrap();
    Object::discard(&mut o);
    drop(o); // wakes the maintenance task, whose refill takes the only permit and hangs
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(pool.status().creating, 1);
    let timeout = Duration::from_secs(2);
    let start = tokio::time::Instant::now();
    let got = tokio::time::timeout(Duration::from_secs(60), pool.get_timeout(Some(timeout)))
        .await
        .expect("the wait ended by its own deadline");
    assert!(matches!(got, Err(Error::Timeout { .. })));
    let took = start.elapsed();
    assert!(
        took >= timeout && took <= timeout + Duration::from_millis(5),
        "{took:?}"
    );
}

/// A maintenance pass closes idle objects that broke while idle and refills `min_idle` in the
/// same pass.
#[tokio::test]
async fn a_maintenance_pass_replaces_broken_idle_objects_at_once() {
    let m = TestManager::new();
    let registry = mpm_metrics::Registry::default();
    let pool = builder(&m)
        .max_size(nz(4))
        .min_idle(2)
        .metrics(&registry, "b")
        .build()
        .await
        .unwrap();
    m.broken.store(true, Ordering::SeqCst);
    // The refill below is not checked by `is_broken`, so it keeps its new objects.
    pool.run_maintenance().await;
    m.broken.store(false, Ordering::SeqCst);
    let s = pool.status();
    assert_eq!((s.size, s.idle), (2, 2), "{s:?}");
    assert_eq!(m.created.load(Ordering::SeqCst), 4);
    let broken = registry
        .snapshot()
        .get(
            "mpm_pool_closed_total",
            &[("name", "b"), ("reason", "broken")],
        )
        .unwrap()
        .as_f64();
    assert_eq!(broken, 2.0);
}

#[tokio::test]
async fn status_shows_the_permits_available() {
    let m = TestManager::new();
    let pool = builder(&m).max_size(nz(3)).build().await.unwrap();
    assert_eq!(pool.status().available, 3);
    let held = pool.get().await.unwrap();
    assert_eq!(pool.status().available, 2);
    drop(held);
    assert_eq!(pool.status().available, 3);
}

#[tokio::test]
async fn a_returned_object_goes_to_the_first_waiter_and_a_cancelled_waiter_passes_it_on() {
    let m = TestManager::new();
    let pool = builder(&m).max_size(nz(1)).build().await.unwrap();
    let held = pool.get().await.unwrap();
    let id = *held;
    let first = spawn_get(&pool);
    let second = spawn_get(&pool);
    until_waiting(&pool, 2).await;
    // Handed straight to the first waiter: it never shows as idle, and a new get queues
    // behind the waiters instead of taking it.
    drop(held);
    let s = pool.status();
    assert_eq!(
        (s.idle, s.in_use, s.waiting, s.available),
        (0, 1, 1, 0),
        "{s:?}"
    );
    // The first waiter goes before it picks the object up: the object passes to the second.
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    assert_eq!(second.await.unwrap().unwrap(), id);
    let s = pool.status();
    assert_eq!((s.size, s.idle, s.in_use, s.waiting), (1, 1, 0, 0), "{s:?}");
    assert_eq!(m.created.load(Ordering::SeqCst), 1);
}

/// A get that follows a line of waiters (the pool's hint says callers wait, though the last
/// was served) takes the idle object in its first poll, and one that finds nothing free joins
/// the line and is served first come, first served.
#[tokio::test]
async fn a_get_after_a_line_of_waiters_takes_the_idle_object_at_once() {
    let pool = Pool::builder(TestManager::new())
        .max_size(nz(1))
        .min_idle(1)
        .build()
        .await
        .unwrap();
    let held = pool.get().await.unwrap();
    let first = spawn_get(&pool);
    until_waiting(&pool, 1).await;
    let second = spawn_get(&pool);
    until_waiting(&pool, 2).await;
    drop(held);
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    assert_eq!(pool.status().waiting, 0);
    assert_eq!(pool.status().idle, 1);
    let mut get = std::pin::pin!(pool.get());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let std::task::Poll::Ready(got) = get.as_mut().poll(&mut cx) else {
        panic!("the idle object was not taken in the first poll");
    };
    let _object = got.unwrap();
    assert_eq!(pool.status().in_use, 1);
}
