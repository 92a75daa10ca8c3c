//! mpm-pool beside deadpool (managed) and bb8, with no-op managers on a 2-worker Tokio runtime
//! (hold mode on one thread, see below).
//! deadpool runs twice: with the same 30 s wait timeout as ours and bb8's (`deadpool`), and with
//! its default of none (`deadpool_no_timeout`), which reads no clock and sets no timer per get;
//! ours runs without a timeout too (`mpm_no_timeout`), to show what the timeout costs.
//!
//! Criterion measures each pool in a few seconds of its own, one pool after another, so a busy
//! spell of a shared machine moves the ratios of its figures; where that moved them most (hold
//! mode, and the keyed pools), the pools are measured in turns instead, round by round
//! (`mpm_benches::rounds`), and those rounds are the figures `cargo xtask bench` reads: one
//! measurement, not two that disagree (criterion's own hold group read 1.04x deadpool without
//! its timeout in one full run and 1.37x in a rerun minutes later, where the interleaved pass
//! read 1.34x-1.36x).
//!
//! - `pool_get_drop/<objects>x<tasks>`: every task gets an object and drops it at once, in a
//!   loop; one element is one get-and-drop.
//! - `pool_hold/<objects>x<tasks>`: every task yields once while it holds the object, on a
//!   current-thread Tokio runtime. Every get but a few waits, so a busy spell moves these
//!   figures most: the pools take turns, 21 rounds of [`HOLD_ROUND`] cycles each, and each
//!   pool's rounds are recorded (its median round, with the interval of the median that 21
//!   rounds give). The pass prints each ratio as the median over rounds of the ratio within a
//!   round (`pool_interleaved/hold`).
//!
//!   Hold mode runs on one thread because on a 2-core machine a 2-worker runtime has two
//!   regimes of hold mode, whatever the pool: about 0.9 M cycles/s while both workers share
//!   the tasks, 2.5 to 3.1 M while, by Tokio's scheduling, nearly all of them run on one
//!   worker (no wake-up crosses a core), and a regime lasts seconds, so a whole criterion
//!   benchmark fell in one and its peer's in the other (deadpool without its timeout once read
//!   2.6 M against our 0.9 M in one run, and the other way round in the next), and ratios
//!   of the interleaved pass moved from 0.9x to 1.5x between runs. Pinning the two workers to
//!   separate cores did not prevent it. On one thread the pools' costs per cycle are compared
//!   (the scheduler's, the waker's and the pool's, with no wake-up across cores). A round is
//!   timed by the time its thread spent on a CPU (Linux's schedstat; wall time elsewhere), so
//!   that other processes on a shared machine, which took a third of the wall time of some
//!   rounds and none of others, do not move the figures; in hold mode every task is always
//!   ready to run, so no pool's round has idle time that this would hide. The interleaved pass
//!   also prints hold mode on the 2-worker runtime in wall time (`hold_2_workers`), to watch,
//!   not to quote.
//! - `keyed_get_drop/<keys>x<tasks>`: mpm's `KeyedPool` (one object per key) beside what a
//!   user would otherwise write, a map from key to a deadpool pool of one object behind a
//!   read-write lock; task `i` uses key `i % keys`. The two take turns, 21 rounds of 200,000
//!   cycles on the 2-worker runtime, recorded as hold mode's are (`keyed_interleaved`).
//! - After the groups, a fairness run in hold mode prints, for each pool, when the first task
//!   finished as a share of the run's total time and the longest single wait, with the pools
//!   taking turns round by round.

// criterion's macros generate public functions without docs.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mpm_benches::rounds;
use tokio::runtime::Runtime;

/// (objects, tasks) pairs.
const SHAPES: [(usize, usize); 3] = [(4, 16), (8, 32), (16, 64)];

/// Get-and-hold cycles in one round of hold mode.
const HOLD_ROUND: u64 = 50_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

/// The runtime of hold mode: one thread (see the module doc).
fn hold_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

struct Noop;

impl mpm_pool::Manager for Noop {
    type Object = u64;
    type Error = Infallible;
    async fn create(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
}

struct DeadpoolNoop;

impl deadpool::managed::Manager for DeadpoolNoop {
    type Type = u64;
    type Error = Infallible;
    async fn create(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn recycle(
        &self,
        _: &mut u64,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

struct Bb8Noop;

impl bb8::ManageConnection for Bb8Noop {
    type Connection = u64;
    type Error = Infallible;
    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn is_valid(&self, _: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }
    fn has_broken(&self, _: &mut u64) -> bool {
        false
    }
}

/// The pools under test, built once per shape.
#[derive(Clone)]
enum AnyPool {
    Mpm(mpm_pool::Pool<Noop>),
    Deadpool(deadpool::managed::Pool<DeadpoolNoop>),
    Bb8(bb8::Pool<Bb8Noop>),
}

impl AnyPool {
    /// One get; `hold` yields once while holding. Returns how long the get waited.
    async fn cycle(&self, hold: bool) -> Duration {
        let t = Instant::now();
        match self {
            AnyPool::Mpm(p) => {
                let o = p.get().await.expect("mpm get");
                let waited = t.elapsed();
                if hold {
                    tokio::task::yield_now().await;
                }
                black_box(&*o);
                waited
            }
            AnyPool::Deadpool(p) => {
                let o = p.get().await.expect("deadpool get");
                let waited = t.elapsed();
                if hold {
                    tokio::task::yield_now().await;
                }
                black_box(&*o);
                waited
            }
            AnyPool::Bb8(p) => {
                let o = p.get().await.expect("bb8 get");
                let waited = t.elapsed();
                if hold {
                    tokio::task::yield_now().await;
                }
                black_box(&*o);
                waited
            }
        }
    }

    /// The same without reading the clock, for the throughput groups.
    async fn cycle_fast(&self, hold: bool) {
        match self {
            AnyPool::Mpm(p) => {
                let o = p.get().await.expect("mpm get");
                if hold {
                    tokio::task::yield_now().await;
                }
                black_box(&*o);
            }
            AnyPool::Deadpool(p) => {
                let o = p.get().await.expect("deadpool get");
                if hold {
                    tokio::task::yield_now().await;
                }
                black_box(&*o);
            }
            AnyPool::Bb8(p) => {
                let o = p.get().await.expect("bb8 get");
                if hold {
                    tokio::task::yield_now().await;
                }
                black_box(&*o);
            }
        }
    }
}

/// The pools of [`pools`], in order.
const POOL_LABELS: [&str; 6] = [
    "mpm",
    "mpm_stats",
    "deadpool",
    "bb8",
    "deadpool_no_timeout",
    "mpm_no_timeout",
];

/// The keyed pools of [`keyed_pools`], in order.
const KEYED_LABELS: [&str; 2] = ["mpm_keyed", "deadpool_per_key"];

fn pools(rt: &Runtime, objects: usize) -> Vec<(&'static str, AnyPool)> {
    rt.block_on(async {
        let registry = mpm_metrics::Registry::default();
        let size = std::num::NonZeroUsize::new(objects).expect("objects > 0");
        let mpm = mpm_pool::Pool::builder(Noop)
            .max_size(size)
            .min_idle(objects)
            .build()
            .await
            .expect("mpm pool");
        let mpm_no_timeout = mpm_pool::Pool::builder(Noop)
            .max_size(size)
            .min_idle(objects)
            .acquire_timeout(None)
            .build()
            .await
            .expect("mpm pool without a timeout");
        let mpm_stats = mpm_pool::Pool::builder(Noop)
            .max_size(size)
            .min_idle(objects)
            .metrics(&registry, "bench")
            .build()
            .await
            .expect("mpm pool with metrics");
        // The same 30 s wait timeout as ours and bb8's, so that every pool pays for one.
        let deadpool = deadpool::managed::Pool::builder(DeadpoolNoop)
            .max_size(objects)
            .wait_timeout(Some(Duration::from_secs(30)))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .expect("deadpool");
        // deadpool's default: no wait timeout, so no clock read and no timer per get.
        let deadpool_default = deadpool::managed::Pool::builder(DeadpoolNoop)
            .max_size(objects)
            .build()
            .expect("deadpool");
        // Create every object up front, as the others do with min_idle.
        for pool in [&deadpool, &deadpool_default] {
            let mut held = Vec::new();
            for _ in 0..objects {
                held.push(pool.get().await.expect("deadpool warm-up"));
            }
        }
        let bb8 = bb8::Pool::builder()
            .max_size(objects as u32)
            .min_idle(Some(objects as u32))
            .connection_timeout(Duration::from_secs(30))
            .build(Bb8Noop)
            .await
            .expect("bb8");
        let [l0, l1, l2, l3, l4, l5] = POOL_LABELS;
        vec![
            (l0, AnyPool::Mpm(mpm)),
            (l1, AnyPool::Mpm(mpm_stats)),
            (l2, AnyPool::Deadpool(deadpool)),
            (l3, AnyPool::Bb8(bb8)),
            (l4, AnyPool::Deadpool(deadpool_default)),
            (l5, AnyPool::Mpm(mpm_no_timeout)),
        ]
    })
}

/// Spawns `tasks` tasks made by `task` at once and returns the wall time until all are done.
fn time_tasks<F, Fut>(rt: &Runtime, tasks: usize, task: F) -> Duration
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    rt.block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks).map(|i| tokio::spawn(task(i))).collect();
        for h in handles {
            h.await.expect("task");
        }
        start.elapsed()
    })
}

/// Runs `total` cycles spread over `tasks` tasks; returns the wall time.
fn run(rt: &Runtime, pool: &AnyPool, tasks: usize, total: u64, hold: bool) -> Duration {
    let per_task = total.div_ceil(tasks as u64);
    time_tasks(rt, tasks, |_| {
        let pool = pool.clone();
        async move {
            for _ in 0..per_task {
                pool.cycle_fast(hold).await;
            }
        }
    })
}

/// The time this thread has spent on a CPU, from Linux's `/proc/thread-self/schedstat` (after
/// a yield, which brings the running thread's figure up to date), where it can be read.
fn thread_cpu_time() -> Option<Duration> {
    std::thread::yield_now();
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// One round of hold mode ([`HOLD_ROUND`] cycles) on the one-thread runtime: the time its
/// thread spent on a CPU, or the wall time where that cannot be read.
fn hold_round(rt: &Runtime, pool: &AnyPool, tasks: usize) -> Duration {
    let before = thread_cpu_time();
    let wall = run(rt, pool, tasks, HOLD_ROUND, true);
    match (before, thread_cpu_time()) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => wall,
    }
}

fn get_drop(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("pool_get_drop");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.sample_size(10);
    g.throughput(Throughput::Elements(1));
    for (objects, tasks) in SHAPES {
        for (label, pool) in pools(&rt, objects) {
            // The shape is criterion's parameter, so results of one shape sit side by side.
            let id = BenchmarkId::new(label, format!("{objects}x{tasks}"));
            g.bench_function(id, |b| {
                b.iter_custom(|iters| run(&rt, &pool, tasks, iters.max(tasks as u64), false))
            });
        }
    }
    g.finish();
}

/// (keys, tasks) pairs of the keyed group: every task its own key, and four and eight tasks
/// per key.
const KEYED_SHAPES: [(usize, usize); 3] = [(64, 64), (16, 64), (8, 64)];

impl mpm_pool::keyed::KeyedManager<u32> for Noop {
    type Object = u64;
    type Error = Infallible;
    async fn create(&self, _: &u32) -> Result<u64, Infallible> {
        Ok(0)
    }
}

/// The keyed pool a user would write without ours: a deadpool pool per key in a map behind a
/// read-write lock, made on a key's first use. It has no total cap, no eviction across keys
/// and no idle-key cleanup; ours does all three.
struct DeadpoolPerKey {
    pools: RwLock<HashMap<u32, deadpool::managed::Pool<DeadpoolNoop>>>,
    per_key: usize,
}

impl DeadpoolPerKey {
    fn pool(&self, key: u32) -> deadpool::managed::Pool<DeadpoolNoop> {
        if let Some(p) = self.pools.read().expect("lock").get(&key) {
            return p.clone();
        }
        let mut pools = self.pools.write().expect("lock");
        pools
            .entry(key)
            .or_insert_with(|| {
                deadpool::managed::Pool::builder(DeadpoolNoop)
                    .max_size(self.per_key)
                    .wait_timeout(Some(Duration::from_secs(30)))
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .expect("deadpool")
            })
            .clone()
    }
}

#[derive(Clone)]
enum AnyKeyed {
    Mpm(mpm_pool::keyed::KeyedPool<u32, Noop>),
    Deadpool(Arc<DeadpoolPerKey>),
}

impl AnyKeyed {
    async fn cycle(&self, key: u32) {
        match self {
            AnyKeyed::Mpm(p) => {
                let o = p.get(key).await.expect("mpm keyed get");
                black_box(&*o);
            }
            AnyKeyed::Deadpool(p) => {
                let o = p.pool(key).get().await.expect("deadpool get");
                black_box(&*o);
            }
        }
    }
}

/// Both keyed pools with one object per key, every key's object made up front.
fn keyed_pools(rt: &Runtime, keys: usize) -> Vec<(&'static str, AnyKeyed)> {
    rt.block_on(async {
        let mpm = mpm_pool::keyed::KeyedPool::builder(Noop)
            .max_total(std::num::NonZeroUsize::new(keys).expect("keys > 0"))
            .build()
            .expect("mpm keyed pool");
        let deadpool = Arc::new(DeadpoolPerKey {
            pools: RwLock::new(HashMap::new()),
            per_key: 1,
        });
        let [ours, theirs] = KEYED_LABELS;
        let pools = vec![
            (ours, AnyKeyed::Mpm(mpm)),
            (theirs, AnyKeyed::Deadpool(deadpool)),
        ];
        for (_, pool) in &pools {
            for key in 0..keys as u32 {
                pool.cycle(key).await;
            }
        }
        pools
    })
}

/// Runs `total` keyed cycles over `tasks` tasks, task `i` on key `i % keys`.
fn run_keyed(rt: &Runtime, pool: &AnyKeyed, keys: usize, tasks: usize, total: u64) -> Duration {
    let per_task = total.div_ceil(tasks as u64);
    time_tasks(rt, tasks, |i| {
        let pool = pool.clone();
        let key = (i % keys) as u32;
        async move {
            for _ in 0..per_task {
                pool.cycle(key).await;
            }
        }
    })
}

/// Keyed get-and-drop, 200,000 cycles, the two pools taking turns, 21 rounds: prints each
/// one's median throughput and the ratio, and records the rounds as `keyed_get_drop`.
fn keyed_interleaved(_: &mut Criterion) {
    let rt = runtime();
    for (keys, tasks) in KEYED_SHAPES {
        let shape = format!("{keys}x{tasks}");
        let mut ids = vec![format!("keyed_interleaved/get_drop/{shape}")];
        ids.extend(KEYED_LABELS.map(|l| format!("keyed_get_drop/{l}/{shape}")));
        if !rounds::selected(ids.iter().map(String::as_str)) {
            continue;
        }
        let pools = keyed_pools(&rt, keys);
        let total = 200_000;
        let rates = rounds::interleaved(pools.len(), 21, |i| {
            let took = run_keyed(&rt, &pools[i].1, keys, tasks, total);
            total as f64 / took.as_secs_f64() / 1e6
        });
        println!(
            "keyed_interleaved/get_drop/{shape}: mpm_keyed {:.2} Mops/s, deadpool_per_key {:.2} Mops/s (medians of 21 rounds); mpm/deadpool_per_key {:.2}x (median over rounds)",
            rounds::median(rates[0].clone()),
            rounds::median(rates[1].clone()),
            rounds::paired(&rates[0], &rates[1]),
        );
        for ((label, _), r) in pools.iter().zip(&rates) {
            record("keyed_get_drop", label, &shape, total, r);
        }
    }
}

/// Records the rounds of one pool (throughputs in millions of elements a second, each round
/// `elements` long) as benchmark `group/label/shape`, where criterion writes its results.
fn record(group: &str, label: &str, shape: &str, elements: u64, rates: &[f64]) {
    let id = format!("{group}/{label}/{shape}");
    let times: Vec<Duration> = rates
        .iter()
        .map(|r| Duration::from_secs_f64(elements as f64 / (r * 1e6)))
        .collect();
    match rounds::record(&id, elements, &times) {
        // The line `cargo xtask bench` follows to show its progress.
        Ok(()) => println!("Benchmarking {id}: recorded from the interleaved rounds"),
        Err(e) => eprintln!("{id}: the interleaved rounds could not be recorded: {e}"),
    }
}

/// One fairness round in hold mode: every task starts at once (behind a gate) and runs
/// `per_task` cycles. Returns the first task's finish as a share of the run and the longest
/// single wait.
fn fairness_round(rt: &Runtime, pool: &AnyPool, tasks: usize, per_task: u64) -> (f64, Duration) {
    rt.block_on(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let pool = pool.clone();
                let gate = Arc::clone(&gate);
                tokio::spawn(async move {
                    gate.acquire().await.expect("gate").forget();
                    let mut worst = Duration::ZERO;
                    for _ in 0..per_task {
                        worst = worst.max(pool.cycle(true).await);
                    }
                    (Instant::now(), worst)
                })
            })
            .collect();
        let start = Instant::now();
        gate.add_permits(tasks);
        let mut first = None::<Instant>;
        let mut worst = Duration::ZERO;
        for h in handles {
            let (done, w) = h.await.expect("task");
            first = Some(first.map_or(done, |f| f.min(done)));
            worst = worst.max(w);
        }
        let total = start.elapsed();
        let first = first.map_or(Duration::ZERO, |f| f - start);
        (first.as_secs_f64() / total.as_secs_f64() * 100.0, worst)
    })
}

/// Fairness rounds per pool and shape.
const FAIRNESS_ROUNDS: usize = 15;

/// A round whose longest wait reached this was hit by a stall of the machine: a worker
/// thread kept off its CPU by other processes (at 250 Hz one scheduler tick is 4 ms, and on
/// this shared 2-core machine the longest waits of such rounds are 4 ms, 8 ms, 12 ms for
/// every pool alike), not by the pool, whose own longest waits are a few hundred
/// microseconds.
const OS_STALL: Duration = Duration::from_millis(3);

/// Fewer rounds without stalls than this make no median worth comparing.
const MIN_QUIET_ROUNDS: usize = 5;

/// The median of the rounds' results, if there are enough.
fn median<T: Copy>(mut v: Vec<T>, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> Option<T> {
    if v.len() < MIN_QUIET_ROUNDS {
        return None;
    }
    v.sort_by(cmp);
    v.get(v.len() / 2).copied()
}

/// Hold mode, fifteen rounds per pool and shape with the pools taking turns, so that a noisy
/// neighbour hits all of them alike. Prints, per pool, the first task's finish as a share of
/// the run's total time and the longest single wait: medians over all rounds and over the
/// rounds no machine stall hit, with the number of stalled rounds. Then mpm against deadpool:
/// the ratios of those medians, and in how many rounds ours was no longer than deadpool's in
/// the round run next to it (of the pairs no stall hit).
fn fairness(_: &mut Criterion) {
    if !rounds::selected(["pool_fairness"]) {
        return;
    }
    let rt = runtime();
    for (objects, tasks) in SHAPES {
        let pools = pools(&rt, objects);
        let mut rounds: Vec<Vec<(f64, Duration)>> = vec![Vec::new(); pools.len()];
        for _ in 0..FAIRNESS_ROUNDS {
            for (i, (_, pool)) in pools.iter().enumerate() {
                rounds[i].push(fairness_round(&rt, pool, tasks, 2_000));
            }
        }
        let quiet = |r: &&(f64, Duration)| r.1 < OS_STALL;
        let mut waits = Vec::new();
        for ((label, _), rounds) in pools.iter().zip(&rounds) {
            let shares = |q: bool| {
                let v = rounds.iter().filter(|r| !q || quiet(r)).map(|r| r.0);
                median(v.collect(), f64::total_cmp).unwrap_or(f64::NAN)
            };
            let wait = |q: bool| {
                let v = rounds.iter().filter(|r| !q || quiet(r)).map(|r| r.1);
                median(v.collect(), Duration::cmp)
            };
            let stalled = rounds.len() - rounds.iter().filter(quiet).count();
            let min_share = rounds.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
            let max_wait = rounds.iter().map(|r| r.1).max().unwrap_or_default();
            let quiet_wait = wait(true).map_or_else(|| "n/a".to_owned(), |w| format!("{w:?}"));
            println!(
                "pool_fairness/{label}/{objects}x{tasks}: first task done at {:.1}% of the run (median of {FAIRNESS_ROUNDS}; min {min_share:.1}%; {:.1}% without stalls), longest wait {:?} (median; max {max_wait:?}), {quiet_wait} in the {} rounds no stall of {OS_STALL:?} or more hit",
                shares(false),
                shares(true),
                wait(false).unwrap_or_default(),
                FAIRNESS_ROUNDS - stalled,
            );
            waits.push((wait(false), wait(true)));
        }
        // mpm is pools[0], deadpool pools[2]; a pair is two rounds run one after the other.
        let pairs: Vec<_> = rounds[0]
            .iter()
            .zip(&rounds[2])
            .filter(|(ours, theirs)| quiet(ours) && quiet(theirs))
            .collect();
        let no_longer = pairs
            .iter()
            .filter(|(ours, theirs)| ours.1 <= theirs.1)
            .count();
        let ratio = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64()),
            _ => "n/a".to_owned(),
        };
        println!(
            "pool_fairness/{objects}x{tasks}: longest wait mpm/deadpool {} over all rounds, {} over rounds without stalls; mpm's no longer than deadpool's in {no_longer} of {} pairs of rounds without stalls",
            ratio(waits[0].0, waits[2].0),
            ratio(waits[0].1, waits[2].1),
            pairs.len(),
        );
    }
}

/// Get-and-drop (400,000 cycles) and hold mode ([`HOLD_ROUND`] cycles on one thread, then on
/// the 2-worker runtime) with the pools taking turns, eleven rounds each (hold mode 21), so
/// that a noisy neighbour hits all of them alike: prints each pool's median throughput and our
/// ratios, each the median over rounds of the ratio within a round (to deadpool with the same
/// 30 s wait timeout, to deadpool's default without one, to bb8, and of statistics on to off).
/// The rounds of hold mode on one thread are recorded as `pool_hold`.
fn interleaved(_: &mut Criterion) {
    let two_workers = runtime();
    let one_thread = hold_runtime();
    let passes = [
        ("get_drop", false, &two_workers),
        ("hold", true, &one_thread),
        ("hold_2_workers", true, &two_workers),
    ];
    for (mode, hold, rt) in passes {
        for (objects, tasks) in SHAPES {
            let shape = format!("{objects}x{tasks}");
            // A filter such as `pool_interleaved/hold` runs the hold passes alone; the ids
            // of `pool_hold` select the pass that records them.
            let mut ids = vec![format!("pool_interleaved/{mode}/{shape}")];
            if mode == "hold" {
                ids.extend(POOL_LABELS.map(|l| format!("pool_hold/{l}/{shape}")));
            }
            if !rounds::selected(ids.iter().map(String::as_str)) {
                continue;
            }
            let pools = pools(rt, objects);
            let total = if hold { HOLD_ROUND } else { 400_000 };
            // Hold rounds are short: more of them.
            let n = if hold { 21 } else { 11 };
            let rates = rounds::interleaved(pools.len(), n, |i| {
                let took = if mode == "hold" {
                    hold_round(rt, &pools[i].1, tasks)
                } else {
                    run(rt, &pools[i].1, tasks, total, hold)
                };
                total as f64 / took.as_secs_f64() / 1e6
            });
            let line: Vec<String> = pools
                .iter()
                .zip(&rates)
                .map(|((label, _), r)| format!("{label} {:.2} Mops/s", rounds::median(r.clone())))
                .collect();
            let [mpm, stats, deadpool, bb8, deadpool_default, mpm_no_timeout] = &rates[..] else {
                unreachable!("six pools");
            };
            println!(
                "pool_interleaved/{mode}/{shape}: {} (medians of {n} rounds); ratios (medians over rounds): mpm/deadpool {:.2}x (without its timeout {:.2}x; both without {:.2}x), mpm/bb8 {:.2}x, statistics cost {:.1}%",
                line.join(", "),
                rounds::paired(mpm, deadpool),
                rounds::paired(mpm, deadpool_default),
                rounds::paired(mpm_no_timeout, deadpool_default),
                rounds::paired(mpm, bb8),
                (1.0 - rounds::paired(stats, mpm)) * 100.0
            );
            if mode == "hold" {
                for ((label, _), r) in pools.iter().zip(&rates) {
                    record("pool_hold", label, &shape, total, r);
                }
            }
        }
    }
}

criterion_group!(benches, get_drop, fairness, interleaved, keyed_interleaved);
criterion_main!(benches);
