//! `MemoryTier`: TTL, bounds, pinning, listener causes, shrinking, statistics.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpm_cache::{Clock, ManualClock, MemoryTier, RemovalCause};

type Log = Arc<Mutex<Vec<(u32, RemovalCause)>>>;

fn tier(cap: usize, ttl: Option<Duration>) -> (MemoryTier<u32, u32>, ManualClock, Log) {
    let (clock, hand) = Clock::manual();
    let log: Log = Arc::default();
    let l = Arc::clone(&log);
    let t = MemoryTier::builder()
        .max_entries(NonZeroUsize::new(cap).unwrap())
        .default_ttl(ttl)
        .clock(clock)
        .eviction_listener(move |k: &u32, _: &u32, c| l.lock().unwrap().push((*k, c)))
        .build()
        .unwrap();
    (t, hand, log)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn default_ttl_applies_to_insert_and_expired_entries_are_reclaimed() {
    let (t, hand, log) = tier(100, Some(secs(10)));
    t.insert(1, 10);
    hand.advance(secs(10));
    assert_eq!(t.get(&1), Some(10), "alive exactly at its deadline");
    hand.advance(Duration::from_millis(1));
    assert_eq!(t.get(&1), None);
    assert_eq!(t.len(), 0);
    assert_eq!(*log.lock().unwrap(), vec![(1, RemovalCause::Expired)]);
}

#[test]
fn none_ttl_means_never_not_the_default() {
    let (t, hand, _) = tier(100, Some(secs(1)));
    t.insert_with_ttl(1, 10, None);
    t.insert_with_ttl(2, 20, Some(secs(100)));
    hand.advance(secs(50));
    assert_eq!(t.get(&1), Some(10));
    assert_eq!(t.get(&2), Some(20));
    assert_eq!(t.ttl_of(&1), Some(None));
    assert_eq!(t.ttl_of(&2), Some(Some(secs(50))));
    hand.advance(secs(1_000_000));
    assert_eq!(t.get(&1), Some(10));
    assert_eq!(t.get(&2), None);
}

#[test]
fn purge_expired_keeps_len_and_weight_true() {
    let (t, hand, log) = tier(1000, None);
    for k in 0..100 {
        t.insert_with_ttl(k, k, if k % 2 == 0 { Some(secs(1)) } else { None });
    }
    hand.advance(secs(2));
    assert_eq!(t.purge_expired(), 50);
    assert_eq!(t.len(), 50);
    assert_eq!(t.weight(), 50);
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .all(|(_, c)| *c == RemovalCause::Expired)
    );
    assert_eq!(t.stats_snapshot().expired, 50);
}

#[test]
fn listener_hears_replaced_invalidated_and_capacity() {
    let (t, _hand, log) = tier(50, None);
    t.insert(1, 1);
    t.insert(1, 2);
    assert_eq!(t.get(&1), Some(2));
    assert_eq!(t.remove(&1), Some(2));
    for k in 100..400 {
        t.insert(k, k);
    }
    let log = log.lock().unwrap();
    assert_eq!(log[0], (1, RemovalCause::Replaced));
    assert_eq!(log[1], (1, RemovalCause::Invalidated));
    assert!(log[2..].iter().all(|(_, c)| *c == RemovalCause::Capacity));
    assert!(log.len() >= 250, "{}", log.len());
    assert!(t.len() <= 50);
}

#[test]
fn pinned_entries_survive_capacity_pressure_and_shrinking() {
    let (t, _hand, _) = tier(64, None);
    for k in 0..8 {
        t.insert_pinned(k, k, None);
    }
    for k in 1000..5000 {
        t.insert(k, k);
    }
    t.shrink_to(0.0).unwrap();
    for k in 0..8 {
        assert_eq!(t.get(&k), Some(k), "pinned key {k} was evicted");
    }
    assert_eq!(t.len(), 8);
}

#[test]
fn shrink_to_half_and_quarter() {
    let (t, _hand, log) = tier(1000, None);
    for k in 0..1000 {
        t.insert(k, k);
    }
    let full = t.len();
    t.shrink_to(0.5).unwrap();
    assert!(t.len() <= 500 + 16, "{} of {full}", t.len());
    t.shrink_to(0.25).unwrap();
    assert!(t.len() <= 250 + 16, "{}", t.len());
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .all(|(_, c)| *c == RemovalCause::Capacity)
    );
    assert!(t.shrink_to(1.5).is_err());
    assert!(t.shrink_to(f64::NAN).is_err());
    // Capacity is restored afterwards.
    for k in 2000..3000 {
        t.insert(k, k);
    }
    assert!(t.len() > 900, "{}", t.len());
}

#[test]
fn byte_and_entry_bounds_hold_together() {
    let t: MemoryTier<u32, Vec<u8>> = MemoryTier::builder()
        .max_entries(NonZeroUsize::new(100).unwrap())
        .max_weight(10_000)
        .weigher(|_: &u32, v: &Vec<u8>| v.len() as u64)
        .build()
        .unwrap();
    for k in 0..1000 {
        t.insert(k, vec![0; 10]);
    }
    assert!(t.len() <= 100, "entry bound: {}", t.len());
    for k in 0..1000 {
        t.insert(k, vec![0; 1000]);
    }
    assert!(t.weight() <= 10_000, "byte bound: {}", t.weight());
    assert!(t.len() <= 10, "{}", t.len());
}

#[test]
fn bad_configuration_is_refused_not_panicked() {
    let e = MemoryTier::<u32, u32>::builder()
        .hot_allocation(1.5)
        .build();
    assert!(e.unwrap_err().to_string().contains("hot_allocation"));
    assert!(
        MemoryTier::<u32, u32>::builder()
            .ghost_allocation(-0.1)
            .build()
            .is_err()
    );
    assert!(
        MemoryTier::<u32, u32>::builder()
            .max_weight(0)
            .build()
            .is_err()
    );
    assert!(
        MemoryTier::<u32, u32>::builder()
            .shards(NonZeroUsize::new(3).unwrap())
            .build()
            .is_err()
    );
}

#[test]
fn clear_reports_every_entry() {
    let (t, _hand, log) = tier(100, None);
    for k in 0..10 {
        t.insert(k, k);
    }
    t.clear();
    assert!(t.is_empty());
    assert_eq!(log.lock().unwrap().len(), 10);
}

#[test]
fn the_coarse_clock_moves() {
    let c = Clock::coarse();
    let a = c.now_ms();
    std::thread::sleep(Duration::from_millis(20));
    assert!(c.now_ms() > a);
}

#[test]
fn concurrent_readers_and_writers_keep_the_bound() {
    let t: MemoryTier<u32, u32> = MemoryTier::with_capacity(NonZeroUsize::new(500).unwrap());
    std::thread::scope(|s| {
        for th in 0..8u32 {
            let t = t.clone();
            s.spawn(move || {
                for i in 0..5_000u32 {
                    let k = (i * 7 + th) % 2_000;
                    if t.get(&k).is_none() {
                        t.insert(k, k);
                    }
                }
            });
        }
    });
    // quick_cache splits the bound over its shards, rounding each share up.
    assert!(t.len() <= 500 + 16, "{}", t.len());
    for (k, v) in t.entries() {
        assert_eq!(k, v);
    }
}

#[test]
fn len_and_weight_leave_out_expired_entries_before_they_are_reclaimed() {
    let (clock, hand) = Clock::manual();
    let t: MemoryTier<u32, u32> = MemoryTier::builder()
        .max_entries(NonZeroUsize::new(1_000_000).unwrap())
        .max_weight(1_000_000)
        .weigher(|_: &u32, v: &u32| u64::from(*v))
        .clock(clock)
        .build()
        .unwrap();
    t.insert_with_ttl(1, 10, Some(secs(1)));
    t.insert_with_ttl(2, 20, Some(secs(2)));
    t.insert_with_ttl(3, 30, None);
    t.insert_with_ttl(4, 40, Some(secs(1)));
    assert_eq!((t.len(), t.weight()), (4, 100));
    hand.advance(Duration::from_millis(1_001));
    // No read, no purge: the entries are still held but no longer counted.
    assert_eq!((t.len(), t.weight(), t.held()), (2, 50, 4));
    // Replacing an expired entry brings it back to life once.
    t.insert_with_ttl(4, 44, Some(secs(10)));
    assert_eq!((t.len(), t.weight()), (3, 94));
    hand.advance(secs(1));
    assert_eq!((t.len(), t.weight()), (2, 74));
    // Reclaiming on access and removing keep the totals.
    assert_eq!(t.get(&1), None);
    assert_eq!(t.remove(&2), None);
    assert_eq!((t.len(), t.weight(), t.held()), (2, 74, 2));
    t.clear();
    assert_eq!((t.len(), t.weight(), t.held()), (0, 0, 0));
}

#[test]
fn a_value_whose_weight_changes_after_it_entered_leaves_the_totals_true() {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    // The weigher reads the value's current size, which the application changes in place.
    let (clock, hand) = Clock::manual();
    let t: MemoryTier<u32, Arc<AtomicU64>> = MemoryTier::builder()
        .max_entries(NonZeroUsize::new(100).unwrap())
        .max_weight(100)
        .weigher(|_: &u32, v: &Arc<AtomicU64>| v.load(Relaxed))
        .clock(clock)
        .build()
        .unwrap();
    let grows = Arc::new(AtomicU64::new(3));
    t.insert_with_ttl(1, Arc::clone(&grows), Some(secs(1)));
    t.insert_with_ttl(2, Arc::new(AtomicU64::new(2)), Some(secs(1)));
    t.insert_with_ttl(3, Arc::new(AtomicU64::new(5)), Some(secs(10)));
    assert_eq!((t.len(), t.weight()), (3, 10));
    // Key 1 leaves weighing 7 by the weigher now, 3 as it entered and as the tier held it.
    grows.store(7, Relaxed);
    assert!(t.remove(&1).is_some());
    assert_eq!((t.len(), t.weight()), (2, 7));
    // Once key 2 expires only key 3 is live: the ledger took key 1 out at the weight it put
    // in (taken out at 7, the ledger would owe 4 under key 2's deadline, and say 7).
    hand.advance(Duration::from_millis(1_001));
    assert_eq!((t.len(), t.weight()), (1, 5));
}

#[test]
fn an_entry_too_heavy_to_admit_is_never_counted() {
    let (clock, hand) = Clock::manual();
    let t: MemoryTier<u32, u32> = MemoryTier::builder()
        .max_entries(NonZeroUsize::new(100).unwrap())
        .max_weight(100)
        .weigher(|_: &u32, v: &u32| u64::from(*v))
        .clock(clock)
        .build()
        .unwrap();
    t.insert_with_ttl(1, 10_000, Some(secs(1)));
    t.insert_with_ttl(2, 5, Some(secs(1)));
    assert_eq!(t.get(&1), None);
    assert_eq!((t.len(), t.weight()), (1, 5));
    hand.advance(secs(2));
    assert_eq!((t.len(), t.weight()), (0, 0));
    t.insert_with_ttl(3, 7, None);
    assert_eq!((t.len(), t.weight()), (1, 7));
}

#[test]
fn len_stays_true_under_concurrent_writers_with_ttls() {
    let (clock, hand) = Clock::manual();
    let t: MemoryTier<u32, u32> = MemoryTier::builder()
        .max_entries(NonZeroUsize::new(2_000).unwrap())
        .clock(clock)
        .build()
        .unwrap();
    std::thread::scope(|s| {
        for w in 0..8u32 {
            let t = t.clone();
            s.spawn(move || {
                for i in 0..5_000u32 {
                    let k = (i * 7 + w * 13) % 3_000;
                    match i % 5 {
                        0 => {
                            t.remove(&k);
                        }
                        1 => t.insert_with_ttl(k, i, None),
                        _ => t.insert_with_ttl(k, i, Some(Duration::from_millis(u64::from(i % 4)))),
                    }
                }
            });
        }
    });
    let live = |t: &MemoryTier<u32, u32>| t.entries().len();
    assert_eq!(t.len(), live(&t));
    hand.advance(Duration::from_millis(2));
    assert_eq!(t.len(), live(&t));
    hand.advance(Duration::from_millis(10));
    assert_eq!(t.len(), live(&t));
    assert!(
        t.len() < t.held(),
        "some TTL entries must be held but expired"
    );
}

#[test]
fn the_reclaimer_frees_expired_entries_without_reads() {
    let (t, hand, log) = tier(100, Some(secs(1)));
    for k in 0..10 {
        t.insert(k, k);
    }
    hand.advance(secs(2));
    let handle = t.spawn_reclaimer(Duration::from_millis(1)).unwrap();
    // Wait for the reclaimer's signal (the listener log), bounded.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while log.lock().unwrap().len() < 10 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!((t.len(), t.held()), (0, 0));
    drop(t);
    handle.join().unwrap();
}
