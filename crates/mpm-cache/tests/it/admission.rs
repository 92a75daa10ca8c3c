//! `MemoryTier` with `Admission::Adaptive`: what a refused insert looks like, what is never
//! refused, the hit ratio it buys on a loop, and two threads sharing one tier.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mpm_cache::{Admission, MemoryTier, RemovalCause};

type Log = Arc<Mutex<Vec<(u64, RemovalCause)>>>;

type Fixed = std::hash::BuildHasherDefault<std::hash::DefaultHasher>;

fn tier(cap: usize, admission: Admission) -> (MemoryTier<u64, u64, Fixed>, Log) {
    let log: Log = Arc::default();
    let l = Arc::clone(&log);
    let t = MemoryTier::builder()
        .max_entries(NonZeroUsize::new(cap).unwrap())
        .admission(admission)
        .hasher(Fixed::default())
        .eviction_listener(move |k: &u64, _: &u64, c| l.lock().unwrap().push((*k, c)))
        .build()
        .unwrap();
    (t, log)
}

/// Looks every key up and inserts it on a miss; returns the hit ratio in percent.
fn replay<S>(t: &MemoryTier<u64, u64, S>, keys: impl Iterator<Item = u64>) -> f64
where
    S: std::hash::BuildHasher + Clone,
{
    let (mut hits, mut n) = (0usize, 0usize);
    for k in keys {
        n += 1;
        if t.get(&k).is_some() {
            hits += 1;
        } else {
            t.insert(k, k);
        }
    }
    hits as f64 * 100.0 / n.max(1) as f64
}

/// A loop over 1,000 keys, `rounds` times.
fn looping(rounds: u64) -> impl Iterator<Item = u64> {
    (0..rounds * 1_000).map(|i| i % 1_000)
}

/// A skewed trace: key i*i/1000 for i drawn from a 64-bit LCG, about 4,000 distinct keys.
fn skewed(n: usize) -> Vec<u64> {
    let mut x = 12345u64;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (x >> 33) % 2_000;
            i * i / 1_000
        })
        .collect()
}

/// SipHash with fixed keys and a seed written first: another seed is another draw of the hash
/// collisions in the adaptive policy (its seed comes from the tier's hasher).
#[derive(Clone, Copy, Default)]
struct Seeded(u64);

impl std::hash::BuildHasher for Seeded {
    type Hasher = std::hash::DefaultHasher;

    fn build_hasher(&self) -> Self::Hasher {
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hasher::write_u64(&mut h, self.0);
        h
    }
}

#[test]
fn on_a_loop_larger_than_the_tier_the_default_filter_keeps_part_of_it() {
    // One tier of 100 decides on its whole key space, so a single draw of the hash collisions
    // decides the figure: over 40 seeds the adaptive tier hit 9.3% on average, but a quarter
    // of the draws came out at or below quick_cache's 9.0%. The mean over eight draws is what
    // is asserted.
    let draws = 8;
    let (mut all, mut adaptive) = (0.0, 0.0);
    for seed in 1..=draws {
        let build = |admission: Option<Admission>| -> MemoryTier<u64, u64, Seeded> {
            let b = MemoryTier::builder()
                .max_entries(NonZeroUsize::new(100).unwrap())
                .hasher(Seeded(seed));
            match admission {
                Some(a) => b.admission(a),
                None => b,
            }
            .build()
            .unwrap()
        };
        // The adaptive tier as a user gets it: the builder's default.
        let (a, b) = (build(Some(Admission::All)), build(None));
        replay(&a, looping(10));
        replay(&b, looping(10));
        all += replay(&a, looping(30)) / draws as f64;
        adaptive += replay(&b, looping(30)) / draws as f64;
    }
    // At best 100 of every 1,000 accesses hit.
    assert!(
        adaptive > 7.0,
        "adaptive {adaptive:.2}%, quick_cache's policy {all:.2}%"
    );
    assert!(
        adaptive > all,
        "adaptive {adaptive:.2}%, quick_cache's policy {all:.2}%"
    );
}

#[test]
fn a_refused_insert_is_reported_as_evicted_at_once() {
    let (t, log) = tier(100, Admission::Adaptive);
    replay(&t, looping(20));
    let before = t.stats_snapshot();
    // Keys never seen, one access each, into a tier that filters: most are refused.
    for k in 1_000_000..1_000_200u64 {
        t.insert(k, k);
    }
    let absent: Vec<u64> = (1_000_000..1_000_200u64)
        .filter(|k| !t.contains(k))
        .collect();
    assert!(!absent.is_empty(), "the filter refused nothing");
    let log = log.lock().unwrap();
    for k in &absent {
        // Every key that is not there was reported gone, by capacity.
        assert!(
            log.iter()
                .any(|(e, c)| e == k && *c == RemovalCause::Capacity),
            "{k} is absent but was not reported"
        );
    }
    assert_eq!(t.stats_snapshot().inserts - before.inserts, 200);
    assert!(t.len() <= 100);
}

#[test]
fn updates_and_pinned_inserts_are_never_refused() {
    let (t, _) = tier(100, Admission::Adaptive);
    replay(&t, looping(20));
    let resident: Vec<u64> = (0..1_000).filter(|k| t.contains(k)).take(10).collect();
    assert!(!resident.is_empty());
    for &k in &resident {
        t.insert(k, k + 7);
        assert_eq!(t.peek(&k), Some(k + 7), "the update of {k} was lost");
    }
    for k in 2_000_000..2_000_010u64 {
        t.insert_pinned(k, k, None);
        assert_eq!(t.peek(&k), Some(k), "pinned {k} was refused");
    }
}

#[test]
fn after_a_clear_the_tier_fills_again() {
    let (t, _) = tier(100, Admission::Adaptive);
    replay(&t, looping(20));
    t.clear();
    // An adaptive tier of 100 entries is one shard (at least 128 entries a shard).
    for k in 5_000_000..5_000_090u64 {
        t.insert(k, k);
    }
    assert_eq!(t.len(), 90, "new keys were refused into a tier with room");
}

/// Two threads share one tier, each taking the next chunk of 64 accesses of the trace (its
/// order holds up to a chunk): the hit ratio stays near one thread's.
fn shared_replay(keys: &[u64], cap: usize, threads: usize, admission: Admission) -> f64 {
    let (t, _) = tier(cap, admission);
    let cursor = AtomicUsize::new(0);
    let hits = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut n = 0;
                loop {
                    let start = cursor.fetch_add(64, Ordering::Relaxed);
                    if start >= keys.len() {
                        break;
                    }
                    for &k in &keys[start..(start + 64).min(keys.len())] {
                        if t.get(&k).is_some() {
                            n += 1;
                        } else {
                            t.insert(k, k);
                        }
                    }
                }
                hits.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    hits.into_inner() as f64 * 100.0 / keys.len() as f64
}

#[test]
fn two_threads_sharing_the_tier_keep_its_hit_ratio() {
    // A skewed trace, then a loop the filter is needed for.
    let mut keys = skewed(200_000);
    keys.extend((0..200_000u64).map(|i| 10_000_000 + i % 1_000));
    let one = shared_replay(&keys, 400, 1, Admission::Adaptive);
    let two = shared_replay(&keys, 400, 2, Admission::Adaptive);
    eprintln!("mixed trace: {one:.2}% alone, {two:.2}% shared");
    // Two threads interleave chunks, which changes the order the tier sees a little: a drop
    // of 1 to 2.5 points was measured; a collapse would be tens of points.
    assert!(two > one - 4.0, "{one:.2}% alone, {two:.2}% shared");
    // On the loop alone, the filter still works when two threads share the tier.
    let loop_keys: Vec<u64> = looping(300).collect();
    let one = shared_replay(&loop_keys, 100, 1, Admission::Adaptive);
    let two = shared_replay(&loop_keys, 100, 2, Admission::Adaptive);
    eprintln!("loop: {one:.2}% alone, {two:.2}% shared");
    // At best 100 of every 1,000 accesses hit.
    assert!(
        two > one - 1.0 && two > 7.0,
        "{one:.2}% alone, {two:.2}% shared"
    );
}
