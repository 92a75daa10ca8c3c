//! One operation of each crate, run `n` times on one thread, for instruction-count budgets.
//!
//! `cargo xtask budgets` runs the `mpm-ops` binary under valgrind's callgrind at two counts of
//! the same operation and divides the difference of the two instruction totals by the
//! difference of the counts: the set-up, which both runs share, cancels, and what is left is
//! the cost of one operation. Only what runs inside [`measured`] is counted (callgrind's
//! `--toggle-collect`), so set-up and background threads (a clock's calibration, a runtime's
//! workers) stay out of the figure; each operation also runs once before, so that first-use
//! work stays out too. Every operation here is deterministic for one binary: one thread, fixed
//! inputs, fixed seeds.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Duration;

/// An operation the budgets can name.
pub struct Op {
    /// The name `benches/budgets.toml` uses, `crate.operation`.
    pub name: &'static str,
    /// What one repetition does, for the report.
    pub what: &'static str,
    /// Runs the set-up, then the operation `n` times.
    pub run: fn(u64),
}

/// Every operation, in crate order.
pub const OPS: &[Op] = &[
    Op {
        name: "metrics.counter_inc",
        what: "increment a registered counter",
        run: metrics_counter_inc,
    },
    Op {
        name: "metrics.histogram_record",
        what: "record one value into a registered histogram",
        run: metrics_histogram_record,
    },
    Op {
        name: "lazy.get",
        what: "warm read of a built `Lazy`",
        run: lazy_get,
    },
    Op {
        name: "lazy.registry_get",
        what: "look a built service up in a `LazyRegistry` of 50",
        run: lazy_registry_get,
    },
    Op {
        name: "cache.l1_hot_get",
        what: "get a resident key from the L1 memory tier (TTL on)",
        run: cache_l1_hot_get,
    },
    Op {
        name: "cache.l1_insert_evict",
        what: "insert a fresh key into a full L1 memory tier",
        run: cache_l1_insert_evict,
    },
    Op {
        name: "cache.l1_hot_get_adaptive",
        what: "get a resident key from the L1 memory tier with adaptive admission (TTL on)",
        run: cache_l1_hot_get_adaptive,
    },
    Op {
        name: "cache.l1_insert_evict_adaptive",
        what: "insert a fresh key into a full L1 memory tier with adaptive admission",
        run: cache_l1_insert_evict_adaptive,
    },
    Op {
        name: "cache.quick_cache_hot_get",
        what: "the floor of `cache.l1_hot_get`: get a resident key from a bare quick_cache",
        run: cache_quick_cache_hot_get,
    },
    Op {
        name: "cache.quick_cache_insert_evict",
        what: "the floor of `cache.l1_insert_evict`: insert a fresh key into a full bare quick_cache",
        run: cache_quick_cache_insert_evict,
    },
    Op {
        name: "cache.quick_cache_insert_evict_l1_ghost",
        what: "`cache.quick_cache_insert_evict` with the L1's ghost allocation",
        run: cache_quick_cache_insert_evict_l1_ghost,
    },
    Op {
        name: "pool.get_drop",
        what: "get an object from a pool of 4 and drop it, one task",
        run: pool_get_drop,
    },
    Op {
        name: "pool.hold",
        what: "one get, yield while holding, drop: 32 tasks on a pool of 8, one thread",
        run: pool_hold,
    },
    Op {
        name: "pool.hold_stats",
        what: "`pool.hold` on a pool that records its metrics (acquire and in-use histograms)",
        run: pool_hold_stats,
    },
    Op {
        name: "memory_opt.default_80kb",
        what: "optimize a generated 80 KB memory file, default profile, one thread",
        run: memory_opt_default_80kb,
    },
    Op {
        name: "memory_opt.claude_mpm_80kb",
        what: "optimize a generated 80 KB memory file, claude-mpm profile, one thread",
        run: memory_opt_claude_mpm_80kb,
    },
    Op {
        name: "batch.run_bounded",
        what: "one ready job of `run_bounded` with at most 64 at once, one task",
        run: batch_run_bounded,
    },
];

/// Runs `op` `n` times. Callgrind counts only the instructions inside this function (the
/// budgets pass `--toggle-collect=*ops::measured*`), so the set-up around it is not counted.
#[inline(never)]
pub fn measured(n: u64, mut op: impl FnMut()) {
    for _ in 0..n {
        op();
    }
}

/// The operation called `name`.
pub fn find(name: &str) -> Option<&'static Op> {
    OPS.iter().find(|op| op.name == name)
}

fn metrics_counter_inc(n: u64) {
    let registry = mpm_metrics::Registry::default();
    let counter = registry
        .counter("requests_total", &[("route", "/a")])
        .expect("a valid counter");
    counter.inc();
    measured(n, || black_box(&counter).inc());
}

fn metrics_histogram_record(n: u64) {
    let registry = mpm_metrics::Registry::default();
    let h = registry
        .histogram("latency", &[], mpm_metrics::Unit::Seconds)
        .expect("a valid histogram");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    h.record(1);
    measured(n, || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        h.record(black_box(x >> 30));
    });
}

fn lazy_get(n: u64) {
    let lazy: mpm_lazy::Lazy<u64, ()> = mpm_lazy::Lazy::new(|| Ok(42));
    lazy.get_or_init().expect("builds");
    measured(n, || {
        black_box(*black_box(&lazy).get().expect("built"));
    });
}

fn lazy_registry_get(n: u64) {
    struct Deployer {
        id: u64,
    }
    let mut builder = mpm_lazy::LazyRegistry::builder();
    for i in 0..50_u64 {
        builder = builder.register_fn(&format!("service_{i}"), move |_| Ok(Deployer { id: i }));
    }
    let registry = builder.build().expect("unique names");
    for i in 0..50 {
        registry
            .get::<Deployer>(&format!("service_{i}"))
            .expect("builds");
    }
    measured(n, || {
        let d = black_box(&registry)
            .get::<Deployer>(black_box("service_17"))
            .expect("built");
        black_box(d.id);
    });
}

const ENTRIES: usize = 10_000;
const HOT: u64 = 1_024;

/// The hasher of quick_cache's and the tier's defaults (foldhash's quality variant) with a fixed
/// seed: seeded at random, it moves the instruction count of an insert by a few percent from
/// run to run. SipHash, which these budgets used before, cost each side 70 to 140 instructions
/// an operation that the defaults do not spend, which flattered every ratio to quick_cache.
type FixedHasher = foldhash::quality::FixedState;

fn memory_tier(admission: mpm_cache::Admission) -> mpm_cache::MemoryTier<u64, u64, FixedHasher> {
    mpm_cache::MemoryTier::builder()
        .max_entries(NonZeroUsize::new(ENTRIES).expect("not zero"))
        .default_ttl(Some(Duration::from_secs(300)))
        .admission(admission)
        .hasher(FixedHasher::default())
        .build()
        .expect("a memory tier")
}

fn cache_l1_hot_get(n: u64) {
    l1_hot_get(mpm_cache::Admission::All, n);
}

fn cache_l1_hot_get_adaptive(n: u64) {
    l1_hot_get(mpm_cache::Admission::Adaptive, n);
}

fn cache_l1_insert_evict(n: u64) {
    l1_insert_evict(mpm_cache::Admission::All, n);
}

fn cache_l1_insert_evict_adaptive(n: u64) {
    l1_insert_evict(mpm_cache::Admission::Adaptive, n);
}

/// Hits on `HOT` resident keys in turn. With adaptive admission one key in 32 is sampled (its
/// hits go to the shadow caches) and one hit in 16 is counted in the sketch.
fn l1_hot_get(admission: mpm_cache::Admission, n: u64) {
    let tier = memory_tier(admission);
    for k in 0..HOT {
        tier.insert(k, k);
    }
    let mut i = 0;
    black_box(tier.get(&i));
    measured(n, || {
        i = (i + 1) & (HOT - 1);
        black_box(tier.get(black_box(&i)));
    });
}

/// Fresh keys into a full tier: every insert evicts one entry. With adaptive admission fresh
/// keys never hit, so the filter stays off: one insert in four is counted in the sketch (and
/// every sampled key's), and one in 32 (the sampled keys) replays in the shadow caches.
fn l1_insert_evict(admission: mpm_cache::Admission, n: u64) {
    let tier = memory_tier(admission);
    for k in 0..ENTRIES as u64 * 2 {
        tier.insert(k, k);
    }
    let mut k = ENTRIES as u64 * 2;
    measured(n, || {
        k += 1;
        tier.insert(black_box(k), k);
    });
}

/// A bare quick_cache of `ENTRIES` with its defaults and the same fixed hasher as the tier: the
/// peer the L1's budgets are ratios of (hot get at most 1.1x, insert at most 1.5x).
fn quick_cache() -> quick_cache::sync::Cache<u64, u64, quick_cache::UnitWeighter, FixedHasher> {
    quick_cache::sync::Cache::with(
        ENTRIES,
        ENTRIES as u64,
        quick_cache::UnitWeighter,
        FixedHasher::default(),
        quick_cache::sync::DefaultLifecycle::default(),
    )
}

/// [`l1_hot_get`] on a bare quick_cache.
fn cache_quick_cache_hot_get(n: u64) {
    let qc = quick_cache();
    for k in 0..HOT {
        qc.insert(k, k);
    }
    let mut i = 0;
    black_box(qc.get(&i));
    measured(n, || {
        i = (i + 1) & (HOT - 1);
        black_box(qc.get(black_box(&i)));
    });
}

/// [`l1_insert_evict`] on a bare quick_cache.
fn cache_quick_cache_insert_evict(n: u64) {
    quick_cache_insert_evict(quick_cache(), n);
}

/// quick_cache's options for `entries` entries of weight 1, its defaults but the L1's ghost
/// allocation ([`mpm_cache::DEFAULT_GHOST_ALLOCATION`], under either admission policy): what
/// quick_cache's own insert costs with the ghost records the L1's hit ratio needs, to tell
/// the L1's own cost from that option's (here and in the insert benches).
pub fn l1_ghost_options(entries: usize) -> quick_cache::Options {
    quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(entries)
        .weight_capacity(entries as u64)
        .ghost_allocation(mpm_cache::DEFAULT_GHOST_ALLOCATION)
        .build()
        .expect("valid options")
}

/// [`l1_insert_evict`] on a bare quick_cache with [`l1_ghost_options`].
fn cache_quick_cache_insert_evict_l1_ghost(n: u64) {
    let qc = quick_cache::sync::Cache::with_options(
        l1_ghost_options(ENTRIES),
        quick_cache::UnitWeighter,
        FixedHasher::default(),
        quick_cache::sync::DefaultLifecycle::default(),
    );
    quick_cache_insert_evict(qc, n);
}

/// Fills `qc` with twice its capacity, then measures `n` inserts of fresh keys.
fn quick_cache_insert_evict(
    qc: quick_cache::sync::Cache<u64, u64, quick_cache::UnitWeighter, FixedHasher>,
    n: u64,
) {
    for k in 0..ENTRIES as u64 * 2 {
        qc.insert(k, k);
    }
    let mut k = ENTRIES as u64 * 2;
    measured(n, || {
        k += 1;
        qc.insert(black_box(k), k);
    });
}

struct Noop;

impl mpm_pool::Manager for Noop {
    type Object = u64;
    type Error = std::convert::Infallible;
    async fn create(&self) -> Result<u64, std::convert::Infallible> {
        Ok(0)
    }
}

/// A current-thread runtime and on it a pool of `size` [`Noop`] objects, all created and one
/// lent and returned once.
fn noop_pool(size: usize) -> (tokio::runtime::Runtime, mpm_pool::Pool<Noop>) {
    noop_pool_in(size, None)
}

/// [`noop_pool`], recording its metrics into `registry` if one is given.
fn noop_pool_in(
    size: usize,
    registry: Option<&mpm_metrics::Registry>,
) -> (tokio::runtime::Runtime, mpm_pool::Pool<Noop>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let pool = rt.block_on(async {
        let mut builder = mpm_pool::Pool::builder(Noop)
            .max_size(std::num::NonZeroUsize::new(size).expect("a size above 0"))
            .min_idle(size);
        if let Some(registry) = registry {
            builder = builder.metrics(registry, "ops");
        }
        let pool = builder.build().await.expect("a pool");
        black_box(&*pool.get().await.expect("an object"));
        pool
    });
    (rt, pool)
}

fn pool_get_drop(n: u64) {
    let (rt, pool) = noop_pool(4);
    // The whole loop runs inside `measured` once; the difference of two counts is still per
    // get-and-drop.
    measured(1, || {
        rt.block_on(async {
            for _ in 0..n {
                let o = pool.get().await.expect("an object");
                black_box(&*o);
            }
        })
    });
}

/// Hold mode of the pool bench on one thread: 32 tasks share 8 objects, each yields once while
/// it holds one, so nearly every get waits; `n` cycles in all.
fn pool_hold(n: u64) {
    hold_on(noop_pool(8), n);
}

/// [`pool_hold`] on a pool that records its metrics.
fn pool_hold_stats(n: u64) {
    let registry = mpm_metrics::Registry::default();
    hold_on(noop_pool_in(8, Some(&registry)), n);
}

/// `n` cycles of hold mode on `pool` (see [`pool_hold`]).
fn hold_on((rt, pool): (tokio::runtime::Runtime, mpm_pool::Pool<Noop>), n: u64) {
    const TASKS: u64 = 32;
    measured(1, || {
        rt.block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        for _ in 0..n.div_ceil(TASKS) {
                            let o = pool.get().await.expect("an object");
                            tokio::task::yield_now().await;
                            black_box(&*o);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("a task");
            }
        })
    });
}

/// The generated memory file the benches and the Python peer use: `bytes` long, a fifth of its
/// entries duplicates, seed 42.
pub fn memory_file(bytes: usize) -> String {
    mpm_memory_opt::generator::generate(mpm_memory_opt::generator::Spec {
        target_bytes: bytes,
        duplicate_share: 0.2,
        seed: 42,
    })
    .text
}

fn optimize_80kb(options: mpm_memory_opt::Options, n: u64) {
    let text = memory_file(80 * 1024);
    let optimizer = mpm_memory_opt::Optimizer::new(mpm_memory_opt::Options {
        threads: 1,
        ..options
    });
    black_box(optimizer.optimize_text(&text));
    measured(n, || {
        black_box(optimizer.optimize_text(black_box(&text)));
    });
}

fn memory_opt_default_80kb(n: u64) {
    optimize_80kb(mpm_memory_opt::Options::default(), n);
}

fn memory_opt_claude_mpm_80kb(n: u64) {
    optimize_80kb(
        mpm_memory_opt::Options {
            timestamp: Some("2026-01-01 00:00:00".to_owned()),
            ..mpm_memory_opt::Options::claude_mpm()
        },
        n,
    );
}

fn batch_run_bounded(n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let limit = NonZeroUsize::new(64).expect("not zero");
    let jobs = |n: u64| {
        mpm_batch::run_bounded(0..n, limit, |i| async move { Ok::<u64, ()>(black_box(i)) })
    };
    black_box(rt.block_on(jobs(64)));
    // One call of `n` jobs inside `measured`; the difference of two counts is per job.
    measured(1, || {
        black_box(rt.block_on(jobs(n)));
    });
}

/// Whether this process would take mpm-memory-opt's AVX2 path: under callgrind that is
/// valgrind's emulated CPU, not the host's.
pub fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
