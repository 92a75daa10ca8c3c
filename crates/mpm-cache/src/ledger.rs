//! How many entries (and how much weight) of the L1 have expired but are still held, without
//! walking the tier and without a copy of any key.
//!
//! Every entry with a deadline is added under that deadline when inserted and taken away under
//! the same deadline when it leaves the tier (by any cause). Reading the ledger first moves every
//! deadline that has passed into the "expired" totals, so `held - expired` is what is live. One
//! record per distinct millisecond deadline, not per entry: entries inserted in the same
//! millisecond with the same TTL share one.
//!
//! The ledger is split in a few shards, chosen by thread, so that concurrent inserts rarely meet
//! on a lock. An entry may be added in one shard and taken away in another: counts are signed
//! and only their sum over all shards means anything.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

const SHARDS: usize = 8;

#[derive(Default)]
struct Shard {
    /// Count and weight per deadline not yet passed when last read, but for `tail`.
    pending: BTreeMap<u64, (i64, i64)>,
    /// The record of the latest deadline added, kept out of the map: entries inserted with
    /// the default TTL arrive in runs with one deadline, and those runs cost no map lookup.
    tail: Option<(u64, i64, i64)>,
    /// The same for removals: eviction takes the oldest entries first, so removals arrive in
    /// runs with one deadline too.
    head: Option<(u64, i64, i64)>,
    /// Count and weight of entries whose deadline had passed when last read.
    expired: (i64, i64),
    /// The clock reading of the last read: deadlines strictly below it are in `expired` (an
    /// entry is live while `now <= deadline`).
    watermark: u64,
}

impl Shard {
    #[inline]
    fn apply(&mut self, deadline: u64, count: i64, weight: i64) {
        if deadline < self.watermark {
            self.expired.0 += count;
            self.expired.1 += weight;
            return;
        }
        match &mut self.tail {
            Some((d, c, w)) if *d == deadline => {
                *c += count;
                *w += weight;
                return;
            }
            _ => {}
        }
        let run = if count > 0 {
            &mut self.tail
        } else {
            match &mut self.head {
                Some((d, c, w)) if *d == deadline => {
                    *c += count;
                    *w += weight;
                    return;
                }
                _ => {}
            }
            &mut self.head
        };
        // A new run starts: the old one goes to the map.
        if let Some((d, c, w)) = run.replace((deadline, count, weight)) {
            Self::merge(&mut self.pending, d, c, w);
        }
    }

    fn merge(map: &mut BTreeMap<u64, (i64, i64)>, deadline: u64, count: i64, weight: i64) {
        let e = map.entry(deadline).or_insert((0, 0));
        e.0 += count;
        e.1 += weight;
        if *e == (0, 0) {
            map.remove(&deadline);
        }
    }

    fn advance(&mut self, now: u64) -> (i64, i64) {
        if now > self.watermark {
            if let Some((d, c, w)) = self.tail
                && d < now
            {
                self.tail = None;
                Self::merge(&mut self.pending, d, c, w);
            }
            if let Some((d, c, w)) = self.head.take() {
                Self::merge(&mut self.pending, d, c, w);
            }
            while let Some(first) = self.pending.first_entry() {
                if *first.key() >= now {
                    break;
                }
                let (c, w) = first.remove();
                self.expired.0 += c;
                self.expired.1 += w;
            }
            self.watermark = now;
        }
        self.expired
    }
}

/// Expired-but-held totals of a tier. See the module docs.
pub(crate) struct Ledger {
    shards: Box<[Mutex<Shard>]>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }
}

fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

/// One locked shard of the ledger, for several changes under one lock.
pub(crate) struct Changes<'a>(MutexGuard<'a, Shard>);

impl Changes<'_> {
    /// An entry with `deadline` and `weight` entered the tier.
    #[inline]
    pub(crate) fn add(&mut self, deadline: u64, weight: u64) {
        self.0.apply(deadline, 1, clamp(weight));
    }

    /// An entry with `deadline` and `weight` left the tier.
    #[inline]
    pub(crate) fn sub(&mut self, deadline: u64, weight: u64) {
        self.0.apply(deadline, -1, -clamp(weight));
    }
}

fn clamp(weight: u64) -> i64 {
    i64::try_from(weight).unwrap_or(i64::MAX)
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    match shard.lock() {
        Ok(s) => s,
        // The critical sections hold no invariant a panic could break halfway.
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Ledger {
    /// Locks this thread's shard.
    #[inline]
    pub(crate) fn changes(&self) -> Changes<'_> {
        Changes(lock(&self.shards[shard_index()]))
    }

    /// An entry with `deadline` and `weight` entered the tier.
    #[cfg(test)]
    pub(crate) fn add(&self, deadline: u64, weight: u64) {
        self.changes().add(deadline, weight);
    }

    /// An entry with `deadline` and `weight` left the tier.
    pub(crate) fn sub(&self, deadline: u64, weight: u64) {
        self.changes().sub(deadline, weight);
    }

    /// The count and weight of held entries that have expired at `now` (an entry is live while
    /// `now <= deadline`).
    pub(crate) fn expired(&self, now: u64) -> (u64, u64) {
        let (mut c, mut w) = (0i64, 0i64);
        for shard in self.shards.iter() {
            let (sc, sw) = lock(shard).advance(now);
            c += sc;
            w += sw;
        }
        (c.max(0) as u64, w.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passed_deadlines_count_until_taken_away() {
        let l = Ledger::default();
        l.add(10, 3);
        l.add(10, 4);
        l.add(20, 5);
        l.add(0, 1);
        assert_eq!(l.expired(0), (0, 0), "alive while now <= deadline");
        l.sub(0, 1);
        assert_eq!(l.expired(10), (0, 0), "alive while now <= deadline");
        assert_eq!(l.expired(11), (2, 7));
        l.sub(10, 3);
        assert_eq!(l.expired(11), (1, 4));
        l.sub(20, 5); // taken away before it passed
        assert_eq!(l.expired(100), (1, 4));
        l.sub(10, 4);
        assert_eq!(l.expired(100), (0, 0));
    }

    #[test]
    fn runs_of_removals_with_one_deadline_add_up() {
        let l = Ledger::default();
        for d in [5, 5, 6, 6, 6, 7] {
            l.add(d, 2);
        }
        // Removals in runs (5, 5), then one that breaks the run (7), then the run again (6).
        l.sub(5, 2);
        l.sub(5, 2);
        l.sub(7, 2);
        l.sub(6, 2);
        assert_eq!(
            l.expired(7),
            (2, 4),
            "the two entries at 6 left, one at 6 remains"
        );
        l.sub(6, 2);
        l.sub(6, 2);
        assert_eq!(l.expired(8), (0, 0));
        // A removal run still open when the clock passes its deadline.
        l.add(20, 1);
        l.add(21, 1);
        l.sub(20, 1);
        assert_eq!(l.expired(22), (1, 1));
    }

    #[test]
    fn shards_sum_when_add_and_sub_run_on_different_threads() {
        let l = std::sync::Arc::new(Ledger::default());
        let adders: Vec<_> = (0..4)
            .map(|t| {
                let l = l.clone();
                std::thread::spawn(move || {
                    for i in 0..1_000u64 {
                        l.add(1 + (i + t) % 50, 2);
                    }
                })
            })
            .collect();
        for a in adders {
            a.join().unwrap();
        }
        assert_eq!(l.expired(1_000), (4_000, 8_000));
        let l2 = l.clone();
        std::thread::spawn(move || {
            for i in 0..1_000u64 {
                l2.sub(1 + i % 50, 2);
            }
        })
        .join()
        .unwrap();
        assert_eq!(l.expired(1_000), (3_000, 6_000));
    }
}
