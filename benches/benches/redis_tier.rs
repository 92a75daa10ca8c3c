//! mpm-cache-redis beside the raw redis crate, against the local Redis (`MPM_REDIS_URL`,
//! default `redis://127.0.0.1:6379`; skipped with a message when it is not reachable).
//!
//! - `redis_get`: one `RedisTier::get` (a synchronous call waiting for the tier's runtime
//!   thread, decoding and checking the record) beside the same `GET` through the redis crate's
//!   multiplexed connection from synchronous code (`block_on` on a Tokio runtime), and through
//!   its blocking connection.
//! - `redis_get_many/100`: one `RedisTier::get_many` of 100 keys beside the same `MGET` through
//!   the redis crate; one element is one key.
//! - `ratios`: the same comparisons interleaved (61 rounds of a few hundred calls each side;
//!   the median ratio printed, and the median time of one call on each side), steadier than
//!   the groups on a loaded machine.
//! - After the groups, the cross-instance invalidation latency: instance A removes a key that
//!   instance B holds in its L1 (`DEL` and `PUBLISH` in one round trip); the time until B's
//!   cache has dropped it, 2,000 times; p50, p99 and max are printed.

// criterion's macros generate public functions without docs.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mpm_cache::{Tier, TieredCache};
use mpm_cache_redis::{Redis, RedisInvalidationBus, RedisTier};
use redis::AsyncCommands;

const VALUE_BYTES: usize = 200;
const BATCH: usize = 100;
/// Rounds of each interleaved comparison.
const ROUNDS: usize = 61;

fn url() -> String {
    std::env::var("MPM_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn reachable() -> bool {
    let Ok(client) = redis::Client::open(url()) else {
        return false;
    };
    client
        .get_connection_with_timeout(Duration::from_millis(500))
        .is_ok()
}

fn namespace(what: &str) -> String {
    format!("mpm-bench:{what}:{}", std::process::id())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

fn value() -> String {
    "x".repeat(VALUE_BYTES)
}

fn tier(redis: &Redis, ns: &str) -> RedisTier<String> {
    RedisTier::builder(redis, ns).build().expect("a tier")
}

fn get(c: &mut Criterion) {
    if !reachable() {
        println!("redis_get: skipped, Redis is not reachable at {}", url());
        return;
    }
    let redis = Redis::open(&url()).expect("a handle");
    let ns = namespace("get");
    let t = tier(&redis, &ns);
    t.put("k", &value(), None, &[]).expect("a write");
    let rkey = t.redis_key("k");
    // The raw peers read the same bytes (the record) from the same key.
    let rt = runtime();
    let client = redis::Client::open(url()).expect("a client");
    let mut conn = rt
        .block_on(client.get_multiplexed_async_connection())
        .expect("a connection");
    let mut blocking = client.get_connection().expect("a connection");

    let mut g = c.benchmark_group("redis_get");
    g.bench_function("mpm_redis_tier", |b| {
        b.iter(|| black_box(t.get(black_box("k")).expect("a get")))
    });
    g.bench_function("redis_multiplexed_block_on", |b| {
        b.iter(|| {
            let v: Option<Vec<u8>> = rt.block_on(conn.get(black_box(&rkey))).expect("a get");
            black_box(v)
        })
    });
    g.bench_function("redis_blocking", |b| {
        b.iter(|| {
            let v: Option<Vec<u8>> = redis::cmd("GET")
                .arg(black_box(&rkey))
                .query(&mut blocking)
                .expect("a get");
            black_box(v)
        })
    });
    g.finish();
    t.clear().expect("a clear");
}

fn get_many(c: &mut Criterion) {
    if !reachable() {
        println!(
            "redis_get_many: skipped, Redis is not reachable at {}",
            url()
        );
        return;
    }
    let redis = Redis::open(&url()).expect("a handle");
    let ns = namespace("get-many");
    let t = tier(&redis, &ns);
    let keys: Vec<String> = (0..BATCH).map(|i| format!("agent:{i}:profile")).collect();
    for k in &keys {
        t.put(k, &value(), None, &[]).expect("a write");
    }
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let rkeys: Vec<String> = keys.iter().map(|k| t.redis_key(k)).collect();
    let rt = runtime();
    let client = redis::Client::open(url()).expect("a client");
    let mut conn = rt
        .block_on(client.get_multiplexed_async_connection())
        .expect("a connection");

    let mut g = c.benchmark_group("redis_get_many");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function(BenchmarkId::new("mpm_redis_tier", BATCH), |b| {
        b.iter(|| black_box(t.get_many(black_box(&key_refs)).expect("a batch")))
    });
    g.bench_function(BenchmarkId::new("redis_mget_block_on", BATCH), |b| {
        b.iter(|| {
            let v: Vec<Option<Vec<u8>>> = rt
                .block_on(
                    redis::cmd("MGET")
                        .arg(black_box(&rkeys))
                        .query_async(&mut conn),
                )
                .expect("a batch");
            black_box(v)
        })
    });
    g.finish();
    t.clear().expect("a clear");
}

struct Instance {
    _bus: RedisInvalidationBus,
    cache: TieredCache<String>,
    removed: mpsc::Receiver<()>,
}

fn instance(ns: &str) -> Instance {
    let redis = Redis::open(&url()).expect("a handle");
    let bus = RedisInvalidationBus::builder(&redis, ns)
        .build()
        .expect("a bus");
    let tier = RedisTier::<String>::builder(&redis, ns)
        .bus(&bus)
        .build()
        .expect("a tier");
    let cache: TieredCache<String> = TieredCache::builder().l2(tier).build().expect("a cache");
    let (tx, removed) = mpsc::channel();
    cache.on_invalidate(move |_| {
        let _ = tx.send(());
    });
    bus.attach(cache.clone());
    Instance {
        _bus: bus,
        cache,
        removed,
    }
}

fn invalidation_latency(_: &mut Criterion) {
    if !reachable() {
        println!(
            "cross-instance invalidation: skipped, Redis is not reachable at {}",
            url()
        );
        return;
    }
    let ns = namespace("invalidate");
    let (a, b) = (instance(&ns), instance(&ns));
    let mut took = Vec::with_capacity(2000);
    for _ in 0..2000 {
        // B holds the key in its L1; A's own L1 does not matter.
        b.cache.insert("k", value());
        while b.removed.try_recv().is_ok() {}
        let start = Instant::now();
        a.cache.remove("k").expect("a removal");
        b.removed
            .recv_timeout(Duration::from_secs(5))
            .expect("B dropped the key");
        took.push(start.elapsed());
    }
    took.sort();
    let at = |q: f64| took[((took.len() - 1) as f64 * q) as usize];
    println!(
        "cross-instance invalidation (A removes, B's L1 drops it), {} runs: p50 {:?}, p99 {:?}, max {:?}",
        took.len(),
        at(0.5),
        at(0.99),
        took[took.len() - 1]
    );
    let _ = a.cache.clear();
}

/// The medians over `rounds` rounds, each of `n` calls of `ours` then `n` calls of `peer`
/// right after: on a shared machine whose load changes from second to second, the two sides of
/// each ratio see the same load.
struct Interleaved {
    /// The median of the rounds' ratios (time, ours / peer).
    ratio: f64,
    /// The median time of one call of ours, and of the peer's.
    ours: Duration,
    peer: Duration,
}

fn interleaved(
    rounds: usize,
    n: usize,
    mut ours: impl FnMut(),
    mut peer: impl FnMut(),
) -> Interleaved {
    let mut ratios = Vec::with_capacity(rounds);
    let (mut a_all, mut b_all) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        let t = Instant::now();
        (0..n).for_each(|_| ours());
        let a = t.elapsed();
        let t = Instant::now();
        (0..n).for_each(|_| peer());
        let b = t.elapsed();
        ratios.push(a.as_secs_f64() / b.as_secs_f64());
        a_all.push(a / n as u32);
        b_all.push(b / n as u32);
    }
    ratios.sort_by(f64::total_cmp);
    a_all.sort();
    b_all.sort();
    Interleaved {
        ratio: ratios[rounds / 2],
        ours: a_all[rounds / 2],
        peer: b_all[rounds / 2],
    }
}

fn ratios(_: &mut Criterion) {
    if !reachable() {
        return;
    }
    let redis = Redis::open(&url()).expect("a handle");
    let ns = namespace("ratios");
    let t = tier(&redis, &ns);
    let keys: Vec<String> = (0..BATCH).map(|i| format!("agent:{i}:profile")).collect();
    for k in &keys {
        t.put(k, &value(), None, &[]).expect("a write");
    }
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let rkeys: Vec<String> = keys.iter().map(|k| t.redis_key(k)).collect();
    let rt = runtime();
    let client = redis::Client::open(url()).expect("a client");
    let mut conn = rt
        .block_on(client.get_multiplexed_async_connection())
        .expect("a connection");
    let mut blocking = client.get_connection().expect("a connection");
    let mut conn2 = conn.clone();
    let get_vs_multiplexed = interleaved(
        ROUNDS,
        200,
        || {
            black_box(t.get("agent:0:profile").expect("a get"));
        },
        || {
            let v: Option<Vec<u8>> = rt.block_on(conn.get(&rkeys[0])).expect("a get");
            black_box(v);
        },
    );
    let get_vs_blocking = interleaved(
        ROUNDS,
        200,
        || {
            black_box(t.get("agent:0:profile").expect("a get"));
        },
        || {
            let v: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&rkeys[0])
                .query(&mut blocking)
                .expect("a get");
            black_box(v);
        },
    );
    let mget = interleaved(
        ROUNDS,
        20,
        || {
            black_box(t.get_many(&key_refs).expect("a batch"));
        },
        || {
            let v: Vec<Option<Vec<u8>>> = rt
                .block_on(redis::cmd("MGET").arg(&rkeys).query_async(&mut conn2))
                .expect("a batch");
            black_box(v);
        },
    );
    let show = |what: &str, r: &Interleaved| {
        println!(
            "interleaved median {what}: {:.2}x (ours {:?}, peer {:?} per call)",
            r.ratio, r.ours, r.peer
        );
    };
    show("get vs multiplexed block_on", &get_vs_multiplexed);
    show("get vs blocking", &get_vs_blocking);
    show(&format!("get_many/{BATCH} vs MGET"), &mget);
    println!(
        "get_many/{BATCH} throughput vs MGET: {:.2}x",
        1.0 / mget.ratio
    );
    t.clear().expect("a clear");
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = get, get_many, ratios, invalidation_latency
}
criterion_main!(benches);
