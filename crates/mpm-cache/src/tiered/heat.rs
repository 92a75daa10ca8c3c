//! Heat: how often keys are read, sampled, so that warming after a restart loads the hottest
//! keys first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::lock;

/// One L1 hit in this many is counted toward a key's heat.
pub(super) const SAMPLE: u32 = 64;
/// The most keys whose heat is tracked in memory between flushes; past it, counts are halved
/// and the keys left at zero dropped.
const KEYS: usize = 16_384;

/// Whether this read is one of the sampled ones: a per-thread xorshift draw, so no shared write,
/// and random, so that a periodic access pattern cannot dodge the sample.
pub(super) fn sampled() -> bool {
    static SEEDS: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new(
            SEEDS.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) | 1,
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x % u64::from(SAMPLE) == 0
    })
}

/// Reads counted since the last flush (one L1 hit in [`SAMPLE`], every L2 hit).
#[derive(Default)]
pub(super) struct Heat {
    counts: Mutex<HashMap<Arc<str>, u64>>,
}

impl Heat {
    /// Counts `n` reads of `key`.
    pub(super) fn count(&self, key: &str, n: u64) {
        let mut heat = lock(&self.counts);
        if let Some(c) = heat.get_mut(key) {
            *c = c.saturating_add(n);
            return;
        }
        if heat.len() >= KEYS {
            heat.retain(|_, c| {
                *c /= 2;
                *c > 0
            });
            if heat.len() >= KEYS {
                return;
            }
        }
        heat.insert(key.into(), n);
    }

    /// Takes the counts so far.
    pub(super) fn take(&self) -> HashMap<Arc<str>, u64> {
        std::mem::take(&mut *lock(&self.counts))
    }
}
