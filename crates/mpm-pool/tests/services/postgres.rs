//! The PostgreSQL manager against the local server: validation, recycling, and connections
//! killed by the server while idle.

use crate::nz;
use std::time::Duration;

use mpm_pool::Pool;
use mpm_pool::postgres::{PgManager, RecycleMethod};

use mpm_testkit::Service;

fn closed(registry: &mpm_metrics::Registry, pool: &str, reason: &str) -> f64 {
    registry
        .snapshot()
        .get(
            "mpm_pool_closed_total",
            &[("name", pool), ("reason", reason)],
        )
        .map_or(0.0, |v| v.as_f64())
}

pub(crate) async fn connections_killed_while_idle_are_replaced_without_errors() {
    let url = Service::Postgres.url();
    let registry = mpm_metrics::Registry::default();
    let period = Duration::from_millis(300);
    let pool = Pool::builder(PgManager::from_url(&url).unwrap())
        .max_size(nz(3))
        .min_idle(3)
        .maintenance_interval(Some(period))
        .metrics(&registry, "pg")
        .build()
        .await
        .unwrap();
    kill_idle_backends(&pool, &url).await;
    // The maintenance period starts counting when the connections are dead.
    let killed = tokio::time::Instant::now();
    // Every acquire succeeds and works.
    for _ in 0..10 {
        let c = pool.get().await.unwrap();
        let one: i32 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
    }
    // At most one failed check per dead connection.
    let failed = closed(&registry, "pg", "broken") + closed(&registry, "pg", "invalid");
    assert!(failed <= 3.0, "{failed} failed checks");
    // Back at min_idle within one maintenance period of the kill: a pass finds the dead
    // idle connections and refills in the same pass, and a close by an acquire wakes the
    // maintenance task at once. The slack is for creating the connections on a busy machine.
    let deadline = killed + period + Duration::from_millis(100);
    while pool.status().idle < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            pool.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = pool.status();
    assert!(s.size <= 3, "{s:?}");
}

pub(crate) async fn clean_recycling_resets_session_state() {
    let url = Service::Postgres.url();
    let pool = Pool::builder(
        PgManager::from_url(&url)
            .unwrap()
            .recycle_method(RecycleMethod::Clean),
    )
    .max_size(nz(1))
    .maintenance_interval(None)
    .build()
    .await
    .unwrap();
    let c = pool.get().await.unwrap();
    c.batch_execute("SET application_name = 'mpm-pool-test'")
        .await
        .unwrap();
    drop(c);
    let c = pool.get().await.unwrap();
    let name: String = c
        .query_one("SHOW application_name", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(name, "mpm-pool-test");
}

pub(crate) async fn validation_runs_select_1_after_the_window() {
    let url = Service::Postgres.url();
    let pool = Pool::builder(PgManager::from_url(&url).unwrap())
        .max_size(nz(1))
        .skip_validation_within(Duration::ZERO)
        .maintenance_interval(None)
        .build()
        .await
        .unwrap();
    for _ in 0..3 {
        let c = pool.get().await.unwrap();
        assert!(!c.is_closed());
    }
    assert_eq!(pool.status().size, 1);
}

pub(crate) async fn a_bad_url_is_a_typed_error() {
    assert!(PgManager::from_url("postgres://[bad").is_err());
    let pool = Pool::builder(PgManager::from_url("postgres://postgres@127.0.0.1:1/none").unwrap())
        .maintenance_interval(None)
        .acquire_timeout(None)
        .build()
        .await
        .unwrap();
    assert!(matches!(pool.get().await, Err(mpm_pool::Error::Create(_))));
}

/// Terminates the backends of the pool's three idle connections and waits until the server
/// has ended them.
async fn kill_idle_backends(pool: &Pool<PgManager>, url: &str) {
    // The backends of the three idle connections.
    let held = [
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
    ];
    let mut pids = Vec::new();
    for c in &held {
        pids.push(
            c.query_one("SELECT pg_backend_pid()", &[])
                .await
                .unwrap()
                .get::<_, i32>(0),
        );
    }
    drop(held);
    assert_eq!(pool.status().idle, 3);

    let (admin, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    for pid in &pids {
        let row = admin
            .query_one("SELECT pg_terminate_backend($1)", &[pid])
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0));
    }
    // Wait until the server has ended them.
    loop {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                &[&pids],
            )
            .await
            .unwrap()
            .get(0);
        if n == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
}

/// Without any acquire, the maintenance pass notices the closed connections (no round trip)
/// and refills in the same pass, within one period of the kill.
pub(crate) async fn maintenance_alone_replaces_connections_killed_while_idle() {
    let url = Service::Postgres.url();
    let registry = mpm_metrics::Registry::default();
    let period = Duration::from_millis(300);
    let pool = Pool::builder(PgManager::from_url(&url).unwrap())
        .max_size(nz(3))
        .min_idle(3)
        .maintenance_interval(Some(period))
        .metrics(&registry, "pgm")
        .build()
        .await
        .unwrap();
    kill_idle_backends(&pool, &url).await;
    let killed = tokio::time::Instant::now();
    // The slack is for creating the connections on a busy machine.
    let deadline = killed + period + Duration::from_millis(100);
    while closed(&registry, "pgm", "broken") < 3.0 || pool.status().idle < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}, {} closed as broken",
            pool.status(),
            closed(&registry, "pgm", "broken")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The replacements work, and no acquire had to fail a check.
    for _ in 0..3 {
        let c = pool.get().await.unwrap();
        let one: i32 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
    }
    assert_eq!(closed(&registry, "pgm", "invalid"), 0.0);
    assert!(pool.status().size <= 3);
}

/// Fault: a pool built inside one Tokio runtime and used from another after the first shut
/// down (a `static` pool shared by `#[tokio::test]`s does this). Its maintenance task died
/// with the first runtime; a wait relied on that task's sweep to reach its deadline, so a
/// `get_timeout` of 300 ms was still waiting seconds later, and nothing refilled `min_idle`.
/// Now every deadline holds without the task, and the next acquire starts a new task on the
/// caller's runtime.
pub(crate) async fn deadlines_hold_and_maintenance_restarts_after_its_runtime_is_gone() {
    let url = Service::Postgres.url();
    let pool = std::thread::spawn(move || {
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        first.block_on(async {
            Pool::builder(PgManager::from_url(&url).unwrap())
                .max_size(nz(1))
                .min_idle(1)
                .maintenance_interval(Some(Duration::from_millis(100)))
                .build()
                .await
                .unwrap()
        })
        // The first runtime shuts down here, and its tasks with it.
    })
    .join()
    .unwrap();

    // The idle connection's driver died with the first runtime: it is replaced.
    let held = tokio::time::timeout(Duration::from_secs(5), pool.get())
        .await
        .expect("an acquire with a free place is quick")
        .unwrap();
    let one: i32 = held.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);

    // The pool is full: a get with a deadline must give up at that deadline.
    for timeout in [Duration::from_millis(300), Duration::from_secs(1)] {
        let started = tokio::time::Instant::now();
        let got = tokio::time::timeout(timeout * 5, pool.get_timeout(Some(timeout)))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "get_timeout({timeout:?}) still waiting after {:?}",
                    timeout * 5
                )
            });
        assert!(
            matches!(got, Err(mpm_pool::Error::Timeout { .. })),
            "{:?}",
            got.map(|_| ())
        );
        assert!(started.elapsed() >= timeout);
    }

    // Maintenance runs again: taking the connection out makes room, and min_idle is refilled
    // without any acquire.
    drop(mpm_pool::Object::take(held));
    tokio::time::timeout(Duration::from_secs(5), async {
        while pool.status().idle < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("min_idle not refilled: {:?}", pool.status()));
}

/// A PostgreSQL manager that panics once in the method it is told to.
struct Panicky {
    inner: PgManager,
    panic_in: parking_lot::Mutex<Option<&'static str>>,
}

impl Panicky {
    fn new(url: &str) -> Self {
        Panicky {
            inner: PgManager::from_url(url).unwrap(),
            panic_in: parking_lot::Mutex::new(None),
        }
    }

    fn arm(&self, method: &'static str) {
        *self.panic_in.lock() = Some(method);
    }

    fn maybe_panic(&self, method: &'static str) {
        let mut armed = self.panic_in.lock();
        if *armed == Some(method) {
            *armed = None;
            drop(armed);
            panic!("injected panic in {method}");
        }
    }
}

impl mpm_pool::Manager for Panicky {
    type Object = tokio_postgres::Client;
    type Error = mpm_pool::postgres::PgError;
    async fn create(&self) -> Result<Self::Object, Self::Error> {
        self.maybe_panic("create");
        self.inner.create().await
    }
    async fn validate(&self, c: &mut Self::Object) -> Result<(), Self::Error> {
        self.maybe_panic("validate");
        self.inner.validate(c).await
    }
    async fn recycle(&self, c: &mut Self::Object) -> Result<(), Self::Error> {
        self.maybe_panic("recycle");
        mpm_pool::Manager::recycle(&self.inner, c).await
    }
    fn is_broken(&self, c: &mut Self::Object) -> bool {
        self.maybe_panic("is_broken");
        self.inner.is_broken(c)
    }
    fn close(&self, c: Self::Object) {
        self.maybe_panic("close");
        self.inner.close(c)
    }
}

/// Both places of a two-object pool can be held at once, and the connections work.
async fn both_places_work(pool: &Pool<Panicky>) {
    let both = tokio::time::timeout(Duration::from_secs(5), async {
        (pool.get().await.unwrap(), pool.get().await.unwrap())
    })
    .await
    .unwrap_or_else(|_| panic!("a place was lost: {:?}", pool.status()));
    for c in [&both.0, &both.1] {
        let one: i32 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
    }
}

#[track_caller]
fn assert_panicked<T>(got: Result<T, mpm_pool::Error<mpm_pool::postgres::PgError>>, method: &str) {
    match got {
        Err(mpm_pool::Error::ManagerPanicked { method: m, message }) => {
            assert_eq!(m, method);
            assert_eq!(message, format!("injected panic in {method}"));
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("no error"),
    }
}

/// Fault: a panic in a manager method lost the object's place for good (a two-object pool
/// stayed at "size 2, in use 2" and every later get timed out), and in debug builds a
/// bookkeeping assertion fired while unwinding and aborted the process. Now the object is
/// dropped, its place comes back, the caller gets `ManagerPanicked` naming the method, and
/// the pool goes on.
pub(crate) async fn a_panicking_manager_method_costs_one_object_and_an_error() {
    let url = Service::Postgres.url();
    for method in ["is_broken", "validate", "recycle", "create", "close"] {
        let pool = Pool::builder(Panicky::new(&url))
            .max_size(nz(2))
            .skip_validation_within(Duration::ZERO)
            .maintenance_interval(None)
            .acquire_timeout(Some(Duration::from_secs(2)))
            .build()
            .await
            .unwrap();
        both_places_work(&pool).await;
        pool.manager().arm(method);
        match method {
            "close" => {
                let mut c = pool.get().await.unwrap();
                mpm_pool::Object::discard(&mut c);
                drop(c);
                assert_eq!(pool.status().size, 1, "{method}");
            }
            "create" => {
                let _held = (pool.get().await.unwrap(), pool.get().await.unwrap());
                drop(_held.0);
                let mut c = pool.get().await.unwrap();
                mpm_pool::Object::discard(&mut c);
                drop(c);
                assert_panicked(pool.get().await, method);
            }
            _ => assert_panicked(pool.get().await, method),
        }
        let s = pool.status();
        assert!(s.in_use <= 1 && s.size <= 2, "{method}: {s:?}");
        both_places_work(&pool).await;
    }
}

/// Fault: a panic in the maintenance pass ended the maintenance task. Now the pass closes
/// the object and the task goes on: it refills `min_idle` after the panic.
pub(crate) async fn maintenance_survives_a_panicking_manager() {
    let url = Service::Postgres.url();
    let registry = mpm_metrics::Registry::default();
    let pool = Pool::builder(Panicky::new(&url))
        .max_size(nz(2))
        .min_idle(2)
        .maintenance_interval(Some(Duration::from_millis(50)))
        .metrics(&registry, "panicky")
        .build()
        .await
        .unwrap();
    pool.manager().arm("is_broken");
    tokio::time::timeout(Duration::from_secs(5), async {
        while closed(&registry, "panicky", "panicked") < 1.0 || pool.status().idle < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not refilled after a panic: {:?}", pool.status()));
    // And again: the task is still there.
    pool.manager().arm("is_broken");
    tokio::time::timeout(Duration::from_secs(5), async {
        while closed(&registry, "panicky", "panicked") < 2.0 || pool.status().idle < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not refilled after a second panic: {:?}", pool.status()));
}

/// Fault: with a circuit breaker (threshold 5), after the server came back recovery waited
/// out a fixed cool-down (30 s by default), and a retrying caller got millions of instant
/// `CircuitOpen` errors meanwhile. Now an acquire waits for the breaker's probe within its
/// deadline (one error per deadline at most), the probe goes out as soon as the cool-down
/// ends, and the default cool-down starts at 1 s and doubles on each failed probe.
pub(crate) async fn the_breaker_neither_spins_nor_delays_recovery_after_an_outage() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let url = Service::Postgres.url();
    let server: tokio_postgres::Config = url.parse().unwrap();
    let (proxy, config) = mpm_testkit::Forwarder::to_postgres(&server).await.unwrap();
    proxy.set_up(false);

    let acquire_timeout = Duration::from_millis(300);
    let tasks = 4;
    let pool = Pool::builder(PgManager::new(config, tokio_postgres::NoTls))
        .max_size(nz(4))
        .maintenance_interval(None)
        .acquire_timeout(Some(acquire_timeout))
        .circuit_breaker(mpm_pool::CircuitBreaker::default())
        .build()
        .await
        .unwrap();
    let errors = Arc::new(AtomicU64::new(0));
    let breaker_errors = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let served = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (pool, errors, breaker_errors, served, stop) = (
            pool.clone(),
            Arc::clone(&errors),
            Arc::clone(&breaker_errors),
            Arc::clone(&served),
            Arc::clone(&stop),
        );
        handles.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match pool.get().await {
                    Ok(c) => {
                        let one: i32 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
                        assert_eq!(one, 1);
                        served.notify_waiters();
                        tokio::task::yield_now().await;
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        if let mpm_pool::Error::CircuitOpen { state, probe_in } = e {
                            breaker_errors.lock().push((state, probe_in));
                        }
                    }
                }
            }
        }));
    }
    // Down for 2.5 s (long enough for one failed probe), then back.
    let down = Duration::from_millis(2500);
    tokio::time::sleep(down).await;
    let errors_while_down = errors.load(Ordering::Relaxed);
    let mut first_success = std::pin::pin!(served.notified());
    first_success.as_mut().enable();
    let back = tokio::time::Instant::now();
    proxy.set_up(true);
    let recovered = tokio::time::timeout(Duration::from_secs(10), first_success).await;
    let recovery = back.elapsed();
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.await.unwrap();
    }
    eprintln!(
        "{errors_while_down} errors while down; served again {recovery:?} after the server came back"
    );
    assert!(recovered.is_ok(), "not served again within 10 s");
    // No spinning: a caller gets at most one error per acquire deadline (plus the creation
    // failures that open the breaker).
    let bound = tasks * (down.as_millis() / acquire_timeout.as_millis() + 2) as u64;
    assert!(
        errors_while_down <= bound,
        "{errors_while_down} errors in {down:?} (at most {bound})"
    );
    // The breaker's errors say its state and when it probes.
    let breaker_errors = breaker_errors.lock().clone();
    assert!(!breaker_errors.is_empty());
    assert!(breaker_errors.iter().all(|(state, probe_in)| match state {
        mpm_pool::BreakerState::Open => probe_in.is_some(),
        mpm_pool::BreakerState::HalfOpen => probe_in.is_none(),
        mpm_pool::BreakerState::Closed => false,
    }));
    // Opened early for 1 s; each failed probe doubles the cool-down (1, 2, 4 s), so by the
    // time the server is back at 2.5 s the cool-down in force is at most 4 s, and the probe
    // that ends it finds the server. A fixed 30 s cool-down would wait about 27 s.
    assert!(recovery < Duration::from_millis(5000), "{recovery:?}");
}
