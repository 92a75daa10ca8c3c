//! Faults: a server that goes silent, creation that fails while others wait, and tasks
//! cancelled at random points against a manager whose every step may misbehave.

use crate::nz;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use mpm_pool::{Error, Manager, Pool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::test_manager::TestManager;

/// Accepts connections and never answers; keeps them open.
async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

/// Connects to `addr`; each step that talks (a handshake on create when `handshake` is set,
/// validate, recycle when `reset` is set) writes a byte and waits for one.
struct TcpManager {
    addr: SocketAddr,
    handshake: AtomicBool,
    reset: AtomicBool,
    live: AtomicUsize,
}

async fn ping(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(b"?").await?;
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).await?;
    Ok(())
}

impl Manager for TcpManager {
    type Object = TcpStream;
    type Error = std::io::Error;

    async fn create(&self) -> std::io::Result<TcpStream> {
        let mut stream = TcpStream::connect(self.addr).await?;
        if self.handshake.load(Ordering::SeqCst) {
            ping(&mut stream).await?;
        }
        self.live.fetch_add(1, Ordering::SeqCst);
        Ok(stream)
    }

    async fn validate(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        ping(stream).await
    }

    async fn recycle(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        if self.reset.load(Ordering::SeqCst) {
            ping(stream).await?;
        }
        Ok(())
    }

    fn close(&self, _: TcpStream) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn silent_pool(
    handshake: bool,
    reset: bool,
    skip_validation: Duration,
) -> (Pool<TcpManager>, mpm_metrics::Registry) {
    let registry = mpm_metrics::Registry::default();
    let pool = Pool::builder(TcpManager {
        addr: silent_server().await,
        handshake: AtomicBool::new(handshake),
        reset: AtomicBool::new(reset),
        live: AtomicUsize::new(0),
    })
    .max_size(nz(2))
    .maintenance_interval(None)
    .acquire_timeout(Some(Duration::from_millis(400)))
    .create_timeout(Some(Duration::from_millis(50)))
    .validate_timeout(Some(Duration::from_millis(50)))
    .recycle_timeout(Some(Duration::from_millis(50)))
    .skip_validation_within(skip_validation)
    .metrics(&registry, "silent")
    .build()
    .await
    .unwrap();
    (pool, registry)
}

fn timeouts(registry: &mpm_metrics::Registry, stage: &str) -> f64 {
    registry
        .snapshot()
        .get(
            "mpm_pool_timeouts_total",
            &[("name", "silent"), ("stage", stage)],
        )
        .map_or(0.0, |v| v.as_f64())
}

/// Every permit is back: `max` objects can be held at once, and nothing is counted in use.
async fn assert_all_permits_back(pool: &Pool<TcpManager>) {
    let s = pool.status();
    assert_eq!((s.in_use, s.creating, s.waiting), (0, 0, 0), "{s:?}");
    assert!(s.size <= s.max_size, "{s:?}");
    let manager = pool.manager();
    manager.handshake.store(false, Ordering::SeqCst);
    manager.reset.store(false, Ordering::SeqCst);
    let a = pool.get_timeout(Some(Duration::from_secs(2))).await;
    let b = pool.get_timeout(Some(Duration::from_secs(2))).await;
    assert!(a.is_ok() && b.is_ok());
    assert!(manager.live.load(Ordering::SeqCst) <= 2);
}

#[tokio::test]
async fn create_against_a_silent_server_times_out_and_returns_the_permit() {
    let (pool, registry) = silent_pool(true, false, Duration::from_secs(60)).await;
    let err = pool.get().await.unwrap_err();
    assert!(
        matches!(err, Error::CreateTimeout(_) | Error::Timeout { .. }),
        "{err}"
    );
    assert!(timeouts(&registry, "create") >= 1.0);
    assert_eq!(pool.status().size, 0);
    assert_all_permits_back(&pool).await;
}

#[tokio::test]
async fn validate_against_a_silent_server_times_out_and_the_object_is_replaced() {
    let (pool, registry) = silent_pool(false, false, Duration::ZERO).await;
    drop(pool.get().await.unwrap());
    // Validation of the idle object hangs, times out, closes it, and a new one is made.
    let o = pool.get().await.unwrap();
    assert_eq!(timeouts(&registry, "validate"), 1.0);
    assert_eq!(pool.manager().live.load(Ordering::SeqCst), 1);
    drop(o);
    pool.manager().handshake.store(false, Ordering::SeqCst);
    let s = pool.status();
    assert!(s.size <= 1, "{s:?}");
}

#[tokio::test]
async fn recycle_against_a_silent_server_times_out_and_the_object_is_replaced() {
    let (pool, registry) = silent_pool(false, true, Duration::from_secs(60)).await;
    drop(pool.get().await.unwrap());
    pool.manager().reset.store(true, Ordering::SeqCst);
    // Recycling the used object hangs and times out; the replacement is fresh (no recycle).
    let o = pool.get().await.unwrap();
    assert_eq!(timeouts(&registry, "recycle"), 1.0);
    drop(o);
    assert_all_permits_back(&pool).await;
}

#[tokio::test]
async fn callers_waiting_behind_a_silent_server_time_out_and_nothing_leaks() {
    let (pool, _) = silent_pool(true, false, Duration::from_secs(60)).await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(|_| ()) })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_err());
    }
    assert_all_permits_back(&pool).await;
}

#[tokio::test(start_paused = true)]
async fn waiters_proceed_once_creation_works_again_without_a_busy_loop() {
    let m = TestManager::new();
    m.fail_create.store(true, Ordering::SeqCst);
    let pool = Pool::builder(Arc::clone(&m))
        .max_size(nz(2))
        .maintenance_interval(None)
        .acquire_timeout(Some(Duration::from_secs(60)))
        .create_backoff(Duration::from_millis(10), Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(|o| *o) })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let attempts = m.create_attempts.load(Ordering::SeqCst);
    // Two creators (max_size), each pausing half to all of 10 ms, 20 ms, ... up to 1 s: at
    // most about 26 attempts each in 10 s. A busy loop would make thousands.
    assert!(
        (2..=60).contains(&attempts),
        "{attempts} attempts while down"
    );
    assert_eq!(pool.status().waiting, 6);
    m.fail_create.store(false, Ordering::SeqCst);
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }
    let s = pool.status();
    assert_eq!((s.in_use, s.waiting, s.creating), (0, 0, 0));
    assert!(s.size <= 2);
}

/// 32 tasks on 8 places, each holding its object for 20 ms (work on the paused clock),
/// behind a creation that failed for 10 s: every place pauses near the 1 s maximum. Once
/// creation works again, the first success must end the other places' pauses, so that all 8
/// are refilled and every task is served within a few rounds of work (4 x 20 ms), not as each
/// place's own pause of up to 1 s runs out.
#[tokio::test(start_paused = true)]
async fn after_a_long_outage_the_first_success_refills_every_place_at_once() {
    const HOLD: Duration = Duration::from_millis(20);
    let m = TestManager::new();
    m.fail_create.store(true, Ordering::SeqCst);
    let pool = Pool::builder(Arc::clone(&m))
        .max_size(nz(8))
        .maintenance_interval(None)
        .acquire_timeout(Some(Duration::from_secs(60)))
        .create_backoff(Duration::from_millis(10), Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let pool = pool.clone();
            let m = Arc::clone(&m);
            tokio::spawn(async move {
                let o = pool.get().await?;
                let served = (tokio::time::Instant::now(), m.live.load(Ordering::SeqCst));
                tokio::time::sleep(HOLD).await;
                drop(o);
                Ok::<_, Error<_>>(served)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(m.created.load(Ordering::SeqCst), 0);
    assert_eq!(
        pool.status().creating,
        8,
        "every place pausing between attempts"
    );
    m.fail_create.store(false, Ordering::SeqCst);
    let mut served = Vec::new();
    for t in tasks {
        served.push(t.await.unwrap().unwrap());
    }
    let first = served.iter().map(|s| s.0).min().unwrap();
    let last = served.iter().map(|s| s.0).max().unwrap();
    let most = served.iter().map(|s| s.1).max().unwrap();
    assert!(
        last - first <= Duration::from_millis(100),
        "every task served {:?} after the first (8 places: 4 rounds of {HOLD:?})",
        last - first
    );
    assert_eq!(most, 8, "every place refilled");
    assert_eq!(m.created.load(Ordering::SeqCst), 8);
}

/// What one step of [`ChaosManager`] does.
#[derive(Clone, Copy, Debug)]
enum Act {
    Succeed,
    Fail,
    Slow,
    Never,
}

/// A manager whose every step picks an act from a seeded sequence; `calm` makes every step
/// succeed.
struct ChaosManager {
    rng: parking_lot::Mutex<fastrand::Rng>,
    calm: AtomicBool,
    next: AtomicU64,
    live: AtomicUsize,
    max_live: AtomicUsize,
}

impl ChaosManager {
    fn act(&self) -> Act {
        if self.calm.load(Ordering::SeqCst) {
            return Act::Succeed;
        }
        match self.rng.lock().u8(0..10) {
            0..=4 => Act::Succeed,
            5 | 6 => Act::Slow,
            7 | 8 => Act::Fail,
            _ => Act::Never,
        }
    }

    async fn step(&self) -> Result<(), crate::test_manager::TestError> {
        match self.act() {
            Act::Succeed => Ok(()),
            Act::Fail => Err(crate::test_manager::TestError("chaos")),
            Act::Slow => {
                let ms = self.rng.lock().u64(1..50);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(())
            }
            Act::Never => std::future::pending().await,
        }
    }
}

impl Manager for ChaosManager {
    type Object = u64;
    type Error = crate::test_manager::TestError;

    async fn create(&self) -> Result<u64, Self::Error> {
        self.step().await?;
        let live = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_live.fetch_max(live, Ordering::SeqCst);
        Ok(self.next.fetch_add(1, Ordering::SeqCst))
    }

    async fn validate(&self, _: &mut u64) -> Result<(), Self::Error> {
        self.step().await
    }

    async fn recycle(&self, _: &mut u64) -> Result<(), Self::Error> {
        self.step().await
    }

    fn is_broken(&self, _: &mut u64) -> bool {
        !self.calm.load(Ordering::SeqCst) && self.rng.lock().u8(0..10) == 0
    }

    fn close(&self, _: u64) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One chaos round; `maintenance` is the pool's maintenance interval (with it on, waits
/// are woken by the maintenance task's clock ticks instead of their own timers).
async fn chaos_round(seed: u64, maintenance: Option<Duration>) {
    const MAX: usize = 4;
    let pool = Pool::builder(ChaosManager {
        rng: parking_lot::Mutex::new(fastrand::Rng::with_seed(seed)),
        calm: AtomicBool::new(false),
        next: AtomicU64::new(0),
        live: AtomicUsize::new(0),
        max_live: AtomicUsize::new(0),
    })
    .max_size(nz(MAX))
    .maintenance_interval(maintenance)
    .acquire_timeout(Some(Duration::from_millis(200)))
    .create_timeout(Some(Duration::from_millis(30)))
    .validate_timeout(Some(Duration::from_millis(30)))
    .recycle_timeout(Some(Duration::from_millis(30)))
    .skip_validation_within(Duration::from_millis(5))
    .create_backoff(Duration::from_millis(1), Duration::from_millis(20))
    .build()
    .await
    .unwrap();
    let mut rng = fastrand::Rng::with_seed(seed ^ 0xA5A5);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let pool = pool.clone();
        let cancel_after = Duration::from_millis(rng.u64(0..120));
        let hold = Duration::from_millis(rng.u64(0..10));
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                // Cancelled at a random point of the acquire.
                if let Ok(Ok(o)) = tokio::time::timeout(cancel_after, pool.get()).await {
                    tokio::time::sleep(hold).await;
                    drop(o);
                }
            }
        }));
    }
    // Abort some tasks outright, wherever they are.
    for (i, t) in tasks.iter().enumerate() {
        if rng.u8(0..4) == 0 {
            tokio::time::sleep(Duration::from_millis(rng.u64(0..30))).await;
            if i % 2 == 0 {
                t.abort();
            }
        }
    }
    for t in tasks {
        // An aborted task ends cancelled; a panic (a bookkeeping assertion, such as a count
        // going below zero in a guard run on cancellation) must not pass unseen.
        if let Err(e) = t.await {
            assert!(e.is_cancelled(), "seed {seed}: a task panicked: {e}");
        }
    }
    let m = pool.manager();
    let s = pool.status();
    assert_eq!(
        (s.in_use, s.creating, s.waiting),
        (0, 0, 0),
        "seed {seed}: {s:?}"
    );
    assert!(s.size <= MAX, "seed {seed}: {s:?}");
    assert_eq!(
        m.live.load(Ordering::SeqCst),
        s.size,
        "seed {seed}: objects leaked"
    );
    assert!(m.max_live.load(Ordering::SeqCst) <= MAX, "seed {seed}");
    // Every permit came back: MAX objects at once.
    m.calm.store(true, Ordering::SeqCst);
    let mut held = Vec::new();
    for _ in 0..MAX {
        held.push(
            pool.get()
                .await
                .unwrap_or_else(|e| panic!("seed {seed}: {e}")),
        );
    }
    assert!(
        pool.get_timeout(Some(Duration::from_millis(5)))
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn random_cancellation_against_a_chaotic_manager_leaks_nothing() {
    for seed in 0..24 {
        chaos_round(seed, None).await;
    }
}

#[tokio::test(start_paused = true)]
async fn random_cancellation_with_the_maintenance_task_running_leaks_nothing() {
    for seed in 100..116 {
        chaos_round(seed, Some(Duration::from_millis(50))).await;
    }
}

#[tokio::test(start_paused = true)]
async fn maintenance_backs_off_while_the_server_is_down() {
    let m = TestManager::new();
    m.fail_create.store(true, Ordering::SeqCst);
    let pool = Pool::builder(Arc::clone(&m))
        .max_size(nz(4))
        .min_idle(2)
        .maintenance_interval(Some(Duration::from_millis(50)))
        .create_backoff(Duration::from_millis(10), Duration::from_secs(1))
        .build_lazy()
        .unwrap();
    // Callers failing to create wake the task too; it must still back off.
    for _ in 0..5 {
        assert!(
            pool.get_timeout(Some(Duration::from_millis(100)))
                .await
                .is_err()
        );
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let attempts = m.create_attempts.load(Ordering::SeqCst);
    // Callers: a few attempts each within 100 ms. Maintenance: pauses of half to all of
    // 10 ms, 20 ms, ... up to 1 s, so at most about 30 in 10 s. Without backoff: 200 passes.
    assert!(attempts <= 80, "{attempts} attempts while down");
    m.fail_create.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pool.status().idle, 2, "refilled once the server is back");
}

/// A current-thread runtime on which `build` makes a pool and then returns: the pool's
/// maintenance task lives on, but nothing drives it (its runtime's `block_on` has returned).
fn built_on_a_stalled_runtime<T>(
    build: impl std::future::Future<Output = T>,
) -> (tokio::runtime::Runtime, T) {
    let stalled = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = stalled.block_on(async {
        let pool = build.await;
        // Let the task start and tick.
        tokio::time::sleep(Duration::from_millis(20)).await;
        pool
    });
    (stalled, pool)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Issue 10, fault 2: with its maintenance task stalled, the coarse clock stopped, so an
/// object returned before the stall was never validated again (its skip-validation window
/// never ended) however long it then sat idle.
#[test]
fn with_the_maintenance_task_stalled_the_skip_validation_window_still_ends() {
    let m = TestManager::new();
    let window = Duration::from_millis(40);
    let (stalled, pool) = built_on_a_stalled_runtime(
        Pool::builder(Arc::clone(&m))
            .max_size(nz(1))
            .skip_validation_within(window)
            .build(),
    );
    let pool = pool.unwrap();
    runtime().block_on(async {
        drop(pool.get().await.unwrap());
        let validated = m.validated.load(Ordering::SeqCst);
        tokio::time::sleep(window * 5).await;
        drop(pool.get().await.unwrap());
        assert_eq!(
            m.validated.load(Ordering::SeqCst),
            validated + 1,
            "idle for five windows, yet not validated"
        );
        // Used again at once: within the window, not validated.
        drop(pool.get().await.unwrap());
        assert_eq!(m.validated.load(Ordering::SeqCst), validated + 1);
    });
    drop(pool);
    drop(stalled);
}

/// Issue 10, fault 2: with its maintenance task stalled, lifetimes judged on the coarse
/// clock never ended.
#[test]
fn with_the_maintenance_task_stalled_lifetimes_still_end() {
    let m = TestManager::new();
    let lifetime = Duration::from_millis(50);
    let (stalled, pool) = built_on_a_stalled_runtime(
        Pool::builder(Arc::clone(&m))
            .max_size(nz(1))
            .max_lifetime(Some(lifetime))
            .build(),
    );
    let pool = pool.unwrap();
    runtime().block_on(async {
        let first = *pool.get().await.unwrap();
        tokio::time::sleep(lifetime * 4).await;
        let second = *pool.get().await.unwrap();
        assert_ne!(first, second, "an object kept past its lifetime");
        assert_eq!(m.closed.load(Ordering::SeqCst), 1);
    });
    drop(pool);
    drop(stalled);
}

/// Issue 10, fault 2: a wait whose deadline was far off counted on the maintenance task's
/// sweep to wake it near its deadline; when the task then stalled (here its runtime's thread
/// blocks), nothing woke it and it waited past its deadline. A later get finds the task late
/// and wakes it, and it arms its own timer.
#[test]
fn a_wait_that_counted_on_a_task_that_then_stalled_still_times_out() {
    let timeout = Duration::from_millis(1000);
    let (pool_tx, pool_rx) = std::sync::mpsc::channel();
    let (stall_tx, stall_rx) = tokio::sync::oneshot::channel::<()>();
    let (resume_tx, resume_rx) = std::sync::mpsc::channel::<()>();
    let stalled = std::thread::spawn(move || {
        runtime().block_on(async move {
            let pool = Pool::builder(TestManager::new())
                .max_size(nz(1))
                .acquire_timeout(Some(timeout))
                .build()
                .await
                .unwrap();
            pool_tx.send(pool).unwrap();
            // The task ticks while this waits, and stalls while the thread blocks below.
            let _ = stall_rx.await;
            let _ = resume_rx.recv();
        });
    });
    let pool = pool_rx.recv().unwrap();
    runtime().block_on(async {
        let held = pool.get().await.unwrap();
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move {
                let started = tokio::time::Instant::now();
                (pool.get().await.map(|o| *o), started.elapsed())
            }
        });
        while pool.status().waiting == 0 {
            tokio::task::yield_now().await;
        }
        stall_tx.send(()).unwrap();
        // The task is now more than four ticks (of 100 ms) late.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let other = pool.get_timeout(Some(Duration::from_millis(10))).await;
        assert!(matches!(other, Err(Error::Timeout { .. })), "{other:?}");
        let (got, waited) = tokio::time::timeout(timeout * 4, waiter)
            .await
            .expect("the wait outlived its deadline")
            .unwrap();
        assert!(matches!(got, Err(Error::Timeout { .. })), "{got:?}");
        assert!(waited >= timeout, "timed out early: {waited:?}");
        drop(held);
    });
    resume_tx.send(()).unwrap();
    stalled.join().unwrap();
    drop(pool);
}
