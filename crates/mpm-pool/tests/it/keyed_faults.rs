//! Faults the keyed pool survives as the plain pool does: a panicking manager, and a pool
//! used from a second runtime after the one it was built in shut down.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mpm_pool::Error;
use mpm_pool::keyed::{KeyedManager, KeyedPool};

/// Panics once in the method it is armed for; counts creations and closes.
#[derive(Default)]
struct Panicky {
    armed: parking_lot::Mutex<Option<&'static str>>,
    created: AtomicUsize,
    closed: AtomicUsize,
    closing: tokio::sync::Notify,
}

impl Panicky {
    fn arm(&self, method: &'static str) {
        *self.armed.lock() = Some(method);
    }

    fn maybe_panic(&self, method: &'static str) {
        let mut armed = self.armed.lock();
        if *armed == Some(method) {
            *armed = None;
            drop(armed);
            panic!("injected panic in {method}");
        }
    }
}

impl KeyedManager<u32> for Panicky {
    type Object = u32;
    type Error = std::io::Error;
    async fn create(&self, key: &u32) -> Result<u32, std::io::Error> {
        self.maybe_panic("create");
        self.created.fetch_add(1, Ordering::SeqCst);
        Ok(*key)
    }
    async fn validate(&self, _: &u32, _: &mut u32) -> Result<(), std::io::Error> {
        self.maybe_panic("validate");
        Ok(())
    }
    fn is_broken(&self, _: &u32, _: &mut u32) -> bool {
        self.maybe_panic("is_broken");
        false
    }
    fn close(&self, _: &u32, _: u32) {
        self.closed.fetch_add(1, Ordering::SeqCst);
        self.closing.notify_one();
        self.maybe_panic("close");
    }
}

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

/// Fault: a panic in a manager method unwound through the pool (a `get` panicked, or a
/// release lost its object's place for good, so the one place of a pool of one was gone
/// and every later `get` timed out). Now the caller gets `ManagerPanicked` naming the
/// method, the object is dropped and its place comes back.
#[tokio::test]
async fn a_panicking_manager_costs_one_object_never_a_place() {
    for method in ["create", "validate", "is_broken", "close"] {
        let pool = KeyedPool::builder(Panicky::default())
            .max_total(nz(1))
            .skip_validation_within(Duration::ZERO)
            .acquire_timeout(Some(Duration::from_secs(2)))
            .build()
            .unwrap();
        if method != "create" {
            drop(pool.get(1).await.unwrap());
        }
        pool.manager().arm(method);
        match method {
            "create" | "validate" => match pool.get(1).await {
                Err(Error::ManagerPanicked { method: m, .. }) => assert_eq!(m, method),
                other => panic!("{method}: {:?}", other.map(|o| *o)),
            },
            // Panics on release (is_broken) or while closing (close, after the evicting
            // get below): the caller sees nothing.
            _ => drop(pool.get(1).await.unwrap()),
        }
        // The only place is free: another key gets an object (evicting key 1's if idle).
        let other = pool.get(2).await;
        assert!(other.is_ok(), "{method}: {:?}", pool.status());
        drop(other);
        assert!(pool.get(1).await.is_ok(), "{method}: {:?}", pool.status());
        assert!(pool.status().total <= 1, "{method}: {:?}", pool.status());
    }
}

/// Fault: the maintenance task died with the runtime the pool was built in, and nothing
/// started another: idle objects and keys were never dropped again. Now the next `get`
/// starts a task on its own runtime, and deadlines hold throughout (they never depended on
/// the task).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_restarts_on_the_callers_runtime_after_the_first_is_gone() {
    let pool = std::thread::spawn(|| {
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        first.block_on(async {
            KeyedPool::builder(Arc::new(Panicky::default()))
                .max_total(nz(1))
                .idle_timeout(Some(Duration::from_millis(20)))
                .maintenance_interval(Some(Duration::from_millis(10)))
                .build()
                .unwrap()
        })
        // The first runtime shuts down here, and its tasks with it.
    })
    .join()
    .unwrap();

    let held = pool.get(1).await.unwrap();
    // Full: a get with a deadline gives up at it.
    let started = tokio::time::Instant::now();
    let waited = tokio::time::timeout(
        Duration::from_secs(5),
        pool.get_timeout(2, Some(Duration::from_millis(100))),
    )
    .await
    .expect("get_timeout(100 ms) still waiting after 5 s");
    assert!(matches!(waited, Err(Error::Timeout { .. })));
    assert!(started.elapsed() >= Duration::from_millis(100));
    drop(held);

    // The idle object is closed by a maintenance task on this runtime, and its key dropped.
    let m = Arc::clone(pool.manager());
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let closing = m.closing.notified();
            if m.closed.load(Ordering::SeqCst) >= 1 {
                return;
            }
            closing.await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "no maintenance after the first runtime: {:?}",
            pool.status()
        )
    });
    assert_eq!(pool.status().keys, 0);
}

/// Counts validations.
#[derive(Default)]
struct Counting {
    validated: AtomicUsize,
}

impl KeyedManager<u32> for Counting {
    type Object = u32;
    type Error = std::io::Error;
    async fn create(&self, key: &u32) -> Result<u32, std::io::Error> {
        Ok(*key)
    }
    async fn validate(&self, _: &u32, _: &mut u32) -> Result<(), std::io::Error> {
        self.validated.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Issue 10, fault 2, as the plain pool's test: built on a runtime whose `block_on` has
/// returned (its maintenance task lives on, undriven) and used from another, the keyed pool's
/// coarse clock stopped, and an object returned before was never validated again.
#[test]
fn with_the_maintenance_task_stalled_the_skip_validation_window_still_ends() {
    let window = Duration::from_millis(40);
    let stalled = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = stalled.block_on(async {
        let pool = KeyedPool::builder(Arc::new(Counting::default()))
            .max_total(nz(1))
            .skip_validation_within(window)
            .build()
            .unwrap();
        // Let the task start and tick.
        tokio::time::sleep(Duration::from_millis(20)).await;
        pool
    });
    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    other.block_on(async {
        drop(pool.get(1).await.unwrap());
        let validated = pool.manager().validated.load(Ordering::SeqCst);
        tokio::time::sleep(window * 5).await;
        drop(pool.get(1).await.unwrap());
        assert_eq!(
            pool.manager().validated.load(Ordering::SeqCst),
            validated + 1,
            "idle for five windows, yet not validated"
        );
    });
    drop(pool);
    drop(stalled);
}
