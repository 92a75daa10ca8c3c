//! The policies `cargo xtask trace` compares, and the replay of a trace through one of them
//! (on one thread, or on several threads sharing the cache).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::policy::{self, Fixed};

/// A cache policy under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    /// mpm-cache's L1 as a service runs it (TTL, tags, statistics) with `Admission::All`:
    /// quick_cache's policy with mpm's options.
    Mpm,
    /// The same with `Admission::Adaptive`, the L1's default (the prototype's policy, ported).
    MpmAdaptive,
    /// quick_cache with its default options.
    QuickCache,
    /// moka with its default options.
    Moka,
    /// The adaptive prototype (`crate::policy`).
    Adaptive,
    /// An exact LRU, for reference.
    Lru,
}

impl Policy {
    /// Every policy, in the order of the table's columns.
    pub(crate) const ALL: [Policy; 6] = [
        Policy::Mpm,
        Policy::MpmAdaptive,
        Policy::QuickCache,
        Policy::Moka,
        Policy::Adaptive,
        Policy::Lru,
    ];

    /// The column title.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Policy::Mpm => "mpm-all",
            Policy::MpmAdaptive => "mpm",
            Policy::QuickCache => "quick_cache",
            Policy::Moka => "moka",
            Policy::Adaptive => "adaptive",
            Policy::Lru => "lru",
        }
    }
}

/// The options of the policies under test.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Settings {
    /// mpm's L1 hot allocation (`None`: mpm's default).
    pub(crate) hot_allocation: Option<f64>,
    /// mpm's L1 ghost allocation (`None`: mpm's default).
    pub(crate) ghost_allocation: Option<f64>,
    /// The adaptive prototype's knobs.
    pub(crate) adaptive: policy::Config,
    /// The hash seed of mpm's L1 with adaptive admission (0: the fixed hasher every policy
    /// uses); the prototype's is `adaptive.hash_seed`.
    pub(crate) hash_seed: u64,
}

/// One cache, shared by the replay threads: looks a key up, inserts it on a miss, says whether
/// it hit. `key` is the number, `text` the same key as a decimal string.
trait Access: Sync {
    fn access(&self, key: u64, text: &str) -> bool;
}

/// SipHash with fixed keys, the seed (if not 0) hashed first: [`Fixed`] for seed 0, and for
/// another seed another draw of the hash collisions in mpm's adaptive admission (its sketch and
/// its sample hash keys with a seed drawn from the tier's hasher).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Seeded(pub(crate) u64);

impl std::hash::BuildHasher for Seeded {
    type Hasher = std::hash::DefaultHasher;

    fn build_hasher(&self) -> Self::Hasher {
        let mut h = std::hash::DefaultHasher::new();
        if self.0 != 0 {
            std::hash::Hasher::write_u64(&mut h, self.0);
        }
        h
    }
}

struct Mpm(mpm_cache::TieredCache<(), Seeded>);

impl Access for Mpm {
    fn access(&self, key: u64, text: &str) -> bool {
        if self.0.get(text).is_some() {
            return true;
        }
        // A tag on every entry (64 tags in all, so each tag holds many keys).
        let tag = format!("t{}", key % 64);
        self.0
            .insert_with(text, (), mpm_cache::EntryOptions::new().tag(tag));
        false
    }
}

struct QuickCache(quick_cache::sync::Cache<u64, (), quick_cache::UnitWeighter, Fixed>);

impl Access for QuickCache {
    fn access(&self, key: u64, _: &str) -> bool {
        let hit = self.0.get(&key).is_some();
        if !hit {
            self.0.insert(key, ());
        }
        hit
    }
}

struct Moka(moka::sync::Cache<u64, (), Fixed>);

impl Access for Moka {
    fn access(&self, key: u64, _: &str) -> bool {
        let hit = self.0.get(&key).is_some();
        if !hit {
            self.0.insert(key, ());
            // Apply the admission and eviction decisions now, as a busy cache eventually would.
            self.0.run_pending_tasks();
        }
        hit
    }
}

/// A single-threaded policy behind a lock.
struct Locked<T>(Mutex<T>);

impl Access for Locked<policy::Adaptive> {
    fn access(&self, key: u64, _: &str) -> bool {
        self.0.lock().expect("no panics while held").access(key)
    }
}

impl Access for Locked<Lru> {
    fn access(&self, key: u64, _: &str) -> bool {
        self.0.lock().expect("no panics while held").access(key)
    }
}

fn build(policy: Policy, cap: usize, settings: &Settings) -> Result<Box<dyn Access>> {
    Ok(match policy {
        Policy::Mpm | Policy::MpmAdaptive => {
            // As a service would run it: the L1 of a `TieredCache` (no L2) with a default TTL
            // and statistics.
            let (admission, seed) = match policy {
                Policy::MpmAdaptive => (mpm_cache::Admission::Adaptive, settings.hash_seed),
                _ => (mpm_cache::Admission::All, 0),
            };
            let mut l1 = mpm_cache::MemoryTier::builder()
                .admission(admission)
                .max_entries(NonZeroUsize::new(cap).context("capacity must be at least 1")?)
                .default_ttl(Some(Duration::from_secs(86_400)))
                .hasher(Seeded(seed));
            if let Some(h) = settings.hot_allocation {
                l1 = l1.hot_allocation(h);
            }
            if let Some(g) = settings.ghost_allocation {
                l1 = l1.ghost_allocation(g);
            }
            Box::new(Mpm(mpm_cache::TieredCache::builder().l1(l1).build()?))
        }
        Policy::QuickCache => Box::new(QuickCache(quick_cache(cap, None)?)),
        Policy::Moka => Box::new(Moka(
            moka::sync::Cache::builder()
                .max_capacity(cap as u64)
                .build_with_hasher(Fixed::default()),
        )),
        Policy::Adaptive => Box::new(Locked(Mutex::new(policy::Adaptive::new(
            cap,
            settings.adaptive,
        )))),
        Policy::Lru => Box::new(Locked(Mutex::new(Lru::new(cap)))),
    })
}

/// A quick_cache of `cap` entries, with its defaults or the given `(hot, ghost)` allocations.
pub(crate) fn quick_cache(
    cap: usize,
    allocations: Option<(f64, f64)>,
) -> Result<quick_cache::sync::Cache<u64, (), quick_cache::UnitWeighter, Fixed>> {
    let mut opts = quick_cache::OptionsBuilder::new();
    opts.estimated_items_capacity(cap)
        .weight_capacity(cap as u64);
    if let Some((hot, ghost)) = allocations {
        opts.hot_allocation(hot).ghost_allocation(ghost);
    }
    Ok(quick_cache::sync::Cache::with_options(
        opts.build()?,
        quick_cache::UnitWeighter,
        Fixed::default(),
        Default::default(),
    ))
}

/// The hit ratio in percent.
pub(crate) fn pct(hits: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        hits as f64 * 100.0 / n as f64
    }
}

/// How many consecutive accesses a replay thread takes at a time.
const CHUNK: usize = 64;

/// Replays `keys` through a fresh `policy` cache of `cap` entries and returns the hit ratio.
/// With `threads` > 1 the threads share the cache and each takes the next chunk of 64 accesses
/// from a shared cursor, as request workers of one service would: the trace's order holds up
/// to a chunk, and the threads contend on the cache.
pub(crate) fn replay(
    keys: &[u64],
    policy: Policy,
    cap: usize,
    threads: usize,
    settings: &Settings,
) -> Result<f64> {
    let cache = build(policy, cap, settings)?;
    let hits = AtomicUsize::new(0);
    let cursor = AtomicUsize::new(0);
    let run = || {
        let mut text = String::new();
        let mut n = 0;
        loop {
            let start = cursor.fetch_add(CHUNK, Ordering::Relaxed);
            if start >= keys.len() {
                break;
            }
            for &k in &keys[start..(start + CHUNK).min(keys.len())] {
                text.clear();
                let _ = write!(text, "{k}");
                n += usize::from(cache.access(k, &text));
            }
        }
        hits.fetch_add(n, Ordering::Relaxed);
    };
    // Fresh threads even for one: mpm's adaptive admission counts hits per thread (a
    // thread-local tick), so a replay must not inherit the count of the one before it.
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(run);
        }
    });
    Ok(pct(hits.into_inner(), keys.len()))
}

/// An exact LRU: a hash map into a doubly linked list kept in a vector.
pub(crate) struct Lru {
    map: HashMap<u64, usize, Fixed>,
    nodes: Vec<(u64, usize, usize)>, // key, prev, next
    head: usize,
    tail: usize,
    cap: usize,
}

const NIL: usize = usize::MAX;

impl Lru {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            map: HashMap::with_capacity_and_hasher(cap, Fixed::default()),
            nodes: Vec::with_capacity(cap),
            head: NIL,
            tail: NIL,
            cap: cap.max(1),
        }
    }

    fn unlink(&mut self, i: usize) {
        let (_, p, n) = self.nodes[i];
        if p == NIL {
            self.head = n;
        } else {
            self.nodes[p].2 = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.nodes[n].1 = p;
        }
    }

    fn push_front(&mut self, i: usize) {
        self.nodes[i].1 = NIL;
        self.nodes[i].2 = self.head;
        if self.head != NIL {
            self.nodes[self.head].1 = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// Returns whether `k` was a hit; inserts it on a miss.
    pub(crate) fn access(&mut self, k: u64) -> bool {
        if let Some(&i) = self.map.get(&k) {
            self.unlink(i);
            self.push_front(i);
            return true;
        }
        let i = if self.nodes.len() < self.cap {
            self.nodes.push((k, NIL, NIL));
            self.nodes.len() - 1
        } else {
            let i = self.tail;
            self.unlink(i);
            self.map.remove(&self.nodes[i].0);
            self.nodes[i].0 = k;
            i
        };
        self.map.insert(k, i);
        self.push_front(i);
        false
    }
}
