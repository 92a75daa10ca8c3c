//! The keyed pool: per-key and total maxima, eviction, dropped keys, fair waiters.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mpm_pool::Error;
use mpm_pool::keyed::{KeyedManager, KeyedObject, KeyedPool};

#[derive(Default)]
struct Clients {
    created: AtomicUsize,
    closed: AtomicUsize,
    live: AtomicUsize,
    /// Signalled on each close.
    closing: tokio::sync::Notify,
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
        self.closing.notify_one();
    }
}

fn k(key: &str) -> String {
    key.to_owned()
}

fn pool(max_per_key: usize, max_total: usize) -> KeyedPool<String, Arc<Clients>> {
    KeyedPool::builder(Arc::new(Clients::default()))
        .max_per_key(nz(max_per_key))
        .max_total(nz(max_total))
        .acquire_timeout(Some(Duration::from_millis(50)))
        .build()
        .unwrap()
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
    let pool = KeyedPool::builder(Arc::new(Clients::default()))
        .max_per_key(nz(1))
        .max_total(nz(1))
        .build()
        .unwrap();
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
    let pool = KeyedPool::builder(Arc::new(Clients::default()))
        .max_per_key(nz(2))
        .max_total(nz(5))
        .acquire_timeout(Some(Duration::from_millis(20)))
        .build()
        .unwrap();
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

/// Waiters on several keys at both maxima, a third of them given up after one look: every
/// caller that keeps waiting is served (no hand-over is lost between the per-key lines and
/// the line for room in the total), and the counts come back even.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_with_given_up_waiters_serves_every_patient_caller() {
    let pool = KeyedPool::builder(Arc::new(Clients::default()))
        .max_per_key(nz(2))
        .max_total(nz(3))
        // Far longer than the test: a lost hand-over shows as a timeout error.
        .acquire_timeout(Some(Duration::from_secs(30)))
        .build()
        .unwrap();
    let keys = ["a", "b", "c", "d", "e", "f"];
    let served = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let p = pool.clone();
            let served = Arc::clone(&served);
            tokio::spawn(async move {
                for j in 0..200 {
                    let key = keys[(i * 5 + j) % keys.len()];
                    let get = p.get(k(key));
                    let got = if (i + j) % 3 == 0 {
                        // Gives up after one look if not served at once.
                        tokio::select! {
                            biased;
                            r = get => Some(r),
                            _ = tokio::task::yield_now() => None,
                        }
                    } else {
                        Some(get.await)
                    };
                    let Some(got) = got else { continue };
                    let mut o = got.unwrap();
                    served.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(KeyedObject::key(&o), key);
                    assert!(p.status().total <= 3);
                    assert!(p.size_of(&k(key)) <= 2);
                    if j % 13 == 0 {
                        KeyedObject::discard(&mut o);
                    }
                    if j % 2 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // Every caller that did not give up was served.
    let patient = (0..24usize)
        .flat_map(|i| (0..200usize).map(move |j| i + j))
        .filter(|n| n % 3 != 0)
        .count();
    assert!(served.load(Ordering::SeqCst) >= patient);
    let s = pool.status();
    assert_eq!((s.waiting, s.in_use), (0, 0), "{s:?}");
    assert_eq!(s.total, s.idle, "{s:?}");
    assert!(s.total <= 3 && s.keys <= 3, "{s:?}");
    assert_eq!(pool.manager().live.load(Ordering::SeqCst), s.total);
    // Keys left only with given-up waiters are dropped with the idle objects.
    assert_eq!(pool.evict_idle(Duration::ZERO), s.total);
    let s = pool.status();
    assert_eq!((s.keys, s.total, s.waiting), (0, 0, 0), "{s:?}");
    assert_eq!(pool.manager().live.load(Ordering::SeqCst), 0);
}

/// Waits for the manager's `n`th close (a stored wake-up from an earlier close only costs
/// one more look).
async fn until_closed(m: &Clients, n: usize) {
    loop {
        let next = m.closing.notified();
        if m.closed.load(Ordering::SeqCst) >= n {
            return;
        }
        next.await;
    }
}

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

fn maintained(idle: Duration, every: Option<Duration>) -> KeyedPool<String, Arc<Clients>> {
    KeyedPool::builder(Arc::new(Clients::default()))
        .max_per_key(nz(1))
        .max_total(nz(4))
        .idle_timeout(Some(idle))
        .maintenance_interval(every)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn maintenance_closes_idle_objects_and_drops_their_keys() {
    let pool = maintained(Duration::from_secs(1), Some(Duration::from_millis(100)));
    drop(pool.get(k("a")).await.unwrap());
    let idle_since = tokio::time::Instant::now();
    let _b = pool.get(k("b")).await.unwrap();
    // Paused time: the runtime jumps from one maintenance pass to the next until a close.
    until_closed(pool.manager(), 1).await;
    let after = idle_since.elapsed();
    assert!(
        after >= Duration::from_secs(1) && after <= Duration::from_millis(1100),
        "closed after {after:?}"
    );
    let s = pool.status();
    assert_eq!((s.keys, s.total, s.idle, s.in_use), (1, 1, 0, 1), "{s:?}");
    assert_eq!(pool.size_of(&k("a")), 0);
    // A lent object is never closed for idleness, however long it is held.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(pool.size_of(&k("b")), 1);
    assert_eq!(pool.manager().closed.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn an_object_used_again_stays_and_none_idle_timeout_keeps_everything() {
    let pool = maintained(Duration::from_secs(1), Some(Duration::from_millis(100)));
    // Slept, not advanced: the maintenance task ticks the pool's coarse clock on the way, as
    // it does in real time (a jump of the paused clock would leave a return stamped with the
    // time of the last tick).
    for _ in 0..10 {
        drop(pool.get(k("a")).await.unwrap());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(pool.manager().created.load(Ordering::SeqCst), 1);
    assert_eq!(pool.manager().closed.load(Ordering::SeqCst), 0);

    let keep = KeyedPool::builder(Arc::new(Clients::default()))
        .idle_timeout(None)
        .maintenance_interval(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    drop(keep.get(k("a")).await.unwrap());
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(keep.run_maintenance(), 0);
    assert_eq!(keep.status().idle, 1);
}

#[tokio::test(start_paused = true)]
async fn maintenance_can_be_switched_off() {
    let pool = maintained(Duration::from_secs(1), None);
    assert_eq!(alive_tasks(), 0, "no maintenance task");
    drop(pool.get(k("a")).await.unwrap());
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(pool.status().idle, 1, "nothing closes idle objects");
    assert_eq!(pool.run_maintenance(), 1, "a pass by hand still does");
    assert_eq!(pool.status().keys, 0);
}

#[test]
fn outside_a_runtime_the_pool_works_without_a_maintenance_task() {
    let pool = maintained(Duration::from_secs(1), Some(Duration::from_millis(100)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(alive_tasks(), 0);
        drop(pool.get(k("a")).await.unwrap());
    });
    assert_eq!(pool.evict_idle(Duration::ZERO), 1);
}

async fn until_no_task_is_alive() {
    for _ in 0..100 {
        if alive_tasks() == 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the maintenance task is still alive");
}

#[tokio::test(start_paused = true)]
async fn the_maintenance_task_ends_when_the_pool_is_closed_or_dropped() {
    let pool = maintained(Duration::from_secs(1), Some(Duration::from_millis(100)));
    assert_eq!(alive_tasks(), 1);
    pool.close();
    until_no_task_is_alive().await;

    let pool = maintained(Duration::from_secs(1), Some(Duration::from_secs(3600)));
    let manager = Arc::clone(pool.manager());
    drop(pool.get(k("a")).await.unwrap());
    assert_eq!(alive_tasks(), 1);
    drop(pool);
    until_no_task_is_alive().await;
    assert_eq!(
        Arc::strong_count(&manager),
        1,
        "nothing keeps the pool alive"
    );
}

fn value(snap: &mpm_metrics::Snapshot, name: &str, labels: &[(&str, &str)]) -> f64 {
    snap.get(name, labels)
        .unwrap_or_else(|| panic!("no series {name} {labels:?}"))
        .as_f64()
}

#[tokio::test(start_paused = true)]
async fn statistics_are_recorded_into_the_registry() {
    let registry = mpm_metrics::Registry::default();
    let pool = KeyedPool::builder(Arc::new(Clients::default()))
        .max_per_key(NonZeroUsize::new(1).unwrap())
        .max_total(NonZeroUsize::new(2).unwrap())
        .acquire_timeout(Some(Duration::from_millis(50)))
        .idle_timeout(Some(Duration::from_secs(1)))
        .maintenance_interval(Some(Duration::from_millis(100)))
        .metrics(&registry, "sockets")
        .build()
        .unwrap();
    let p = [("name", "sockets")];
    let closed = |reason: &str| {
        value(
            &registry.snapshot(),
            "mpm_pool_keyed_closed_total",
            &[("name", "sockets"), ("reason", reason)],
        )
    };
    drop(pool.get(k("a")).await.unwrap());
    drop(pool.get(k("b")).await.unwrap());
    let mut c = pool.get(k("c")).await.unwrap(); // evicts a
    assert!(matches!(pool.get(k("c")).await, Err(Error::Timeout { .. })));
    // No status() call: the gauges are fresh at the scrape.
    let snap = registry.snapshot();
    assert_eq!(value(&snap, "mpm_pool_keyed_created_total", &p), 3.0);
    assert_eq!(closed("evicted"), 1.0);
    assert_eq!(
        value(
            &snap,
            "mpm_pool_keyed_timeouts_total",
            &[("name", "sockets"), ("stage", "acquire")]
        ),
        1.0
    );
    let gauges = |snap: &mpm_metrics::Snapshot| {
        [
            "mpm_pool_keyed_size",
            "mpm_pool_keyed_idle",
            "mpm_pool_keyed_in_use",
            "mpm_pool_keyed_waiters",
            "mpm_pool_keyed_keys",
            "mpm_pool_keyed_max_size",
        ]
        .map(|g| value(snap, g, &p))
    };
    assert_eq!(gauges(&snap), [2.0, 1.0, 1.0, 0.0, 2.0, 2.0]);

    KeyedObject::discard(&mut c);
    drop(c);
    assert_eq!(closed("discarded"), 1.0);
    // The maintenance task closes b for idleness and publishes the gauges.
    until_closed(pool.manager(), 3).await;
    assert_eq!(closed("idle"), 1.0);
    assert_eq!(gauges(&registry.snapshot()), [0.0, 0.0, 0.0, 0.0, 0.0, 2.0]);

    drop(pool.get(k("d")).await.unwrap());
    pool.close();
    assert_eq!(closed("shutdown"), 1.0);
    assert_eq!(closed("broken"), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_key_reacquired_at_once_cannot_barge_past_a_waiter_on_another_key() {
    let pool = KeyedPool::builder(Arc::new(Clients::default()))
        .max_per_key(nz(1))
        .max_total(nz(1))
        .acquire_timeout(Some(Duration::from_secs(1)))
        .build()
        .unwrap();
    let hot = pool.get(k("hot")).await.unwrap();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let (got_tx, got_rx) = tokio::sync::oneshot::channel::<()>();
    let p = pool.clone();
    let cold = tokio::spawn(async move {
        let o = p.get(k("cold")).await.unwrap();
        got_tx.send(()).unwrap();
        release_rx.await.unwrap();
        drop(o);
    });
    while pool.status().waiting == 0 {
        tokio::task::yield_now().await;
    }
    // The hot key returns its object and asks again at once: the cold waiter came first,
    // so it gets the place (the hot key's idle object is evicted for it).
    drop(hot);
    let again = pool.get(k("hot"));
    tokio::pin!(again);
    tokio::select! {
        biased;
        r = &mut again => panic!("the hot key barged past the waiter: {:?}", r.map(|o| o.1)),
        _ = got_rx => {}
    }
    assert_eq!(pool.size_of(&k("hot")), 0);
    release_tx.send(()).unwrap();
    let o = again.await.unwrap();
    assert_eq!(KeyedObject::key(&o), "hot");
    cold.await.unwrap();
}

/// Validation fails for keys starting with `bad`, hangs for keys starting with `slow`;
/// creation hangs for keys starting with `hang`.
struct Checked;

impl KeyedManager<String> for Checked {
    type Object = ();
    type Error = std::io::Error;

    async fn create(&self, key: &String) -> Result<(), std::io::Error> {
        if key.starts_with("hang") {
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    async fn validate(&self, key: &String, _: &mut ()) -> Result<(), std::io::Error> {
        if key.starts_with("slow") {
            std::future::pending::<()>().await;
        }
        if key.starts_with("bad") {
            return Err(std::io::Error::other("stale"));
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn failed_and_timed_out_validations_are_counted_by_reason() {
    let registry = mpm_metrics::Registry::default();
    let pool = KeyedPool::builder(Checked)
        .skip_validation_within(Duration::ZERO)
        .validate_timeout(Some(Duration::from_millis(10)))
        .acquire_timeout(Some(Duration::from_millis(30)))
        .metrics(&registry, "v")
        .build()
        .unwrap();
    for key in ["bad", "slow"] {
        drop(pool.get(k(key)).await.unwrap());
        tokio::time::advance(Duration::from_millis(1)).await;
    }
    // "bad": the idle object fails validation, is closed, and a new one is made.
    assert!(pool.get(k("bad")).await.is_ok());
    // "slow": the idle object times out in validation and is closed; before the acquire
    // deadline a new one is made and handed out (a fresh object is not validated).
    assert!(pool.get(k("slow")).await.is_ok());
    let snap = registry.snapshot();
    let closed = |reason: &str| {
        value(
            &snap,
            "mpm_pool_keyed_closed_total",
            &[("name", "v"), ("reason", reason)],
        )
    };
    assert_eq!(closed("invalid"), 1.0);
    assert_eq!(closed("timeout"), 1.0);
    assert_eq!(
        value(
            &snap,
            "mpm_pool_keyed_timeouts_total",
            &[("name", "v"), ("stage", "validate")]
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_with_maintenance_running_keeps_the_counts() {
    let pool = KeyedPool::builder(Arc::new(Clients::default()))
        .max_per_key(nz(2))
        .max_total(nz(5))
        .acquire_timeout(Some(Duration::from_millis(20)))
        .idle_timeout(Some(Duration::ZERO))
        .maintenance_interval(Some(Duration::from_millis(1)))
        .build()
        .unwrap();
    let keys = ["a", "b", "c", "d", "e", "f", "g"];
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let p = pool.clone();
            tokio::spawn(async move {
                for j in 0..100 {
                    let key = keys[(i * 5 + j) % keys.len()];
                    if let Ok(o) = p.get(k(key)).await {
                        assert!(p.status().total <= 5);
                        assert!(p.size_of(&k(key)) <= 2);
                        tokio::task::yield_now().await;
                        drop(o);
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
    // With an idle timeout of zero, the maintenance task closes every idle object and drops
    // every key by itself.
    let created = pool.manager().created.load(Ordering::SeqCst);
    until_closed(pool.manager(), created).await;
    let s = pool.status();
    assert_eq!((s.keys, s.total), (0, 0), "{s:?}");
    assert_eq!(pool.manager().live.load(Ordering::SeqCst), 0);
}

/// A pool of `Checked` whose step timeouts (10 s) are far longer than its acquire timeout.
fn checked_with_long_steps(registry: &mpm_metrics::Registry) -> KeyedPool<String, Checked> {
    KeyedPool::builder(Checked)
        .skip_validation_within(Duration::ZERO)
        .create_timeout(Some(Duration::from_secs(10)))
        .validate_timeout(Some(Duration::from_secs(10)))
        .acquire_timeout(Some(Duration::from_millis(50)))
        .metrics(registry, "d")
        .build()
        .unwrap()
}

#[track_caller]
fn check_acquire_timeout(err: Error<std::io::Error>, stage: mpm_pool::Stage) {
    match err {
        Error::Timeout { stage: s, timeout } => {
            assert_eq!((s, timeout), (stage, Duration::from_millis(50)));
        }
        other => panic!("expected an acquire timeout during {stage}, got {other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_creation_ends_at_the_acquire_deadline_and_frees_its_place() {
    let registry = mpm_metrics::Registry::default();
    let pool = checked_with_long_steps(&registry);
    let start = tokio::time::Instant::now();
    let err = pool.get(k("hang")).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    check_acquire_timeout(err, mpm_pool::Stage::Create);
    assert_eq!(pool.size_of(&k("hang")), 0);
    assert_eq!(pool.status().total, 0);
    let snap = registry.snapshot();
    let timeouts = |stage: &str| {
        value(
            &snap,
            "mpm_pool_keyed_timeouts_total",
            &[("name", "d"), ("stage", stage)],
        )
    };
    assert_eq!((timeouts("acquire"), timeouts("create")), (1.0, 0.0));
}

#[tokio::test(start_paused = true)]
async fn a_hanging_validation_ends_at_the_acquire_deadline_and_closes_the_object() {
    let registry = mpm_metrics::Registry::default();
    let pool = checked_with_long_steps(&registry);
    drop(pool.get(k("slow")).await.unwrap());
    let start = tokio::time::Instant::now();
    let err = pool.get(k("slow")).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    check_acquire_timeout(err, mpm_pool::Stage::Validate);
    assert_eq!(pool.status().total, 0);
    let snap = registry.snapshot();
    assert_eq!(
        value(
            &snap,
            "mpm_pool_keyed_closed_total",
            &[("name", "d"), ("reason", "cancelled")]
        ),
        1.0
    );
}

/// Sends the time of each close.
struct CloseTimes(tokio::sync::mpsc::UnboundedSender<tokio::time::Instant>);

impl KeyedManager<u8> for CloseTimes {
    type Object = ();
    type Error = std::io::Error;

    async fn create(&self, _: &u8) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn close(&self, _: &u8, _: ()) {
        let _ = self.0.send(tokio::time::Instant::now());
    }
}

#[tokio::test(start_paused = true)]
async fn maintenance_periods_are_jittered_by_up_to_a_tenth() {
    let (tx, mut closes) = tokio::sync::mpsc::unbounded_channel();
    let every = Duration::from_secs(1);
    let pool = KeyedPool::builder(CloseTimes(tx))
        .idle_timeout(Some(Duration::ZERO))
        .maintenance_interval(Some(every))
        .build()
        .unwrap();
    // Each pass closes the one idle object; a new one is returned right after, so the time
    // between two closes is one period.
    let mut last = tokio::time::Instant::now();
    let mut periods = Vec::new();
    for _ in 0..8 {
        drop(pool.get(1).await.unwrap());
        let closed = closes.recv().await.unwrap();
        periods.push(closed - last);
        last = closed;
    }
    for p in &periods {
        assert!(*p >= every.mul_f64(0.9) && *p <= every, "{periods:?}");
    }
    periods.sort();
    periods.dedup();
    assert!(periods.len() > 1, "every period was the same: {periods:?}");
}

#[tokio::test]
async fn returning_a_keyed_object_is_allocation_free_and_so_is_a_warm_get() {
    let (tx, _closes) = tokio::sync::mpsc::unbounded_channel();
    let pool = KeyedPool::builder(CloseTimes(tx))
        .max_per_key(nz(2))
        .build()
        .unwrap();
    // Warm up: the key's entry and its idle queue are made once.
    for _ in 0..4 {
        drop(pool.get(1).await.unwrap());
    }
    let o = pool.get(1).await.unwrap();
    let before = mpm_metrics::thread_stats();
    drop(o);
    let after = mpm_metrics::thread_stats();
    assert!(mpm_metrics::CountingAllocator::is_active());
    assert_eq!(after.since(&before).allocations, 0, "release allocated");
    let before = mpm_metrics::thread_stats();
    for _ in 0..100 {
        drop(pool.get(1).await.unwrap());
    }
    let after = mpm_metrics::thread_stats();
    assert_eq!(
        after.since(&before).allocations,
        0,
        "get and drop allocated"
    );
}

/// A caller waiting when the pool closes is told so, even if an object comes back before it
/// looks again: the place that object frees is handed to nobody.
#[tokio::test]
async fn a_waiter_gets_closed_even_if_an_object_comes_back_after_the_close() {
    let pool = pool(1, 1);
    let held = pool.get(k("a")).await.unwrap();
    let p = pool.clone();
    // On the same key: the returned object frees that key's own place.
    let waiter = tokio::spawn(async move { p.get(k("a")).await.map(|o| o.1) });
    while pool.status().waiting == 0 {
        tokio::task::yield_now().await;
    }
    pool.close();
    // Returned (and closed) before the waiter runs again.
    drop(held);
    let got = waiter.await.unwrap();
    assert!(matches!(got, Err(Error::Closed)), "{got:?}");
    assert_eq!(pool.status().total, 0);
    assert_eq!(pool.manager().live.load(Ordering::SeqCst), 0);
}

/// Says every object is broken once `broken` is set.
#[derive(Default)]
struct Breakable {
    broken: std::sync::atomic::AtomicBool,
    closed: AtomicUsize,
}

impl KeyedManager<u8> for Breakable {
    type Object = ();
    type Error = std::io::Error;

    async fn create(&self, _: &u8) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn is_broken(&self, _: &u8, _: &mut ()) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    fn close(&self, _: &u8, _: ()) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_maintenance_pass_closes_idle_objects_that_broke_as_the_plain_pools_does() {
    let registry = mpm_metrics::Registry::default();
    let pool = KeyedPool::builder(Breakable::default())
        .max_per_key(nz(2))
        .idle_timeout(None)
        .maintenance_interval(None)
        .metrics(&registry, "breakable")
        .build()
        .unwrap();
    drop(pool.get(1).await.unwrap());
    drop(pool.get(2).await.unwrap());
    assert_eq!(pool.run_maintenance(), 0, "nothing broke");
    pool.manager().broken.store(true, Ordering::SeqCst);
    assert_eq!(pool.run_maintenance(), 2);
    assert_eq!(pool.manager().closed.load(Ordering::SeqCst), 2);
    let s = pool.status();
    assert_eq!((s.keys, s.total), (0, 0), "{s:?}");
    assert_eq!(
        value(
            &registry.snapshot(),
            "mpm_pool_keyed_closed_total",
            &[("name", "breakable"), ("reason", "broken")]
        ),
        2.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_far_from_its_deadline_is_swept_and_times_out_on_time() {
    // Ticks of 100 ms: a wait with 2 s to go counts on the maintenance task's sweep (no timer
    // of its own) until two ticks before its deadline, then arms its timer.
    let pool = KeyedPool::builder(Arc::new(Clients::default()))
        .max_per_key(nz(1))
        .acquire_timeout(Some(Duration::from_secs(2)))
        .skip_validation_within(Duration::from_millis(400))
        .maintenance_interval(Some(Duration::from_secs(60)))
        .build()
        .unwrap();
    let held = pool.get(k("a")).await.unwrap();
    let started = tokio::time::Instant::now();
    let waited = tokio::time::timeout(Duration::from_secs(3), pool.get(k("a")))
        .await
        .expect("the wait ends by its deadline, woken by the sweep");
    assert!(matches!(waited, Err(Error::Timeout { .. })), "{waited:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(2100),
        "timed out after {took:?}"
    );
    drop(held);
    assert_eq!(pool.status().waiting, 0);
}
