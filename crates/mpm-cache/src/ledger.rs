//! How many entries (and how much weight) of the L1 have expired but are still held, without
//! walking the tier and without a copy of any key.
//!
//! Every entry with a deadline is added under that deadline when inserted and taken away under
//! the same deadline when it leaves the tier (by any cause). Reading the ledger counts every
//! deadline that has passed as expired, so `held - expired` is what is live. One record per
//! distinct millisecond deadline, not per entry.
//!
//! Writes are cheap because they come in runs: entries inserted with the default TTL arrive
//! with one deadline for a whole millisecond, and eviction takes the oldest entries first, so
//! removals arrive in runs too. Each thread owns a slot of the ledger (while it has one; a
//! thread without one takes the locked path) holding its current run of additions and of
//! removals as atomics only it writes: adding to a run is a plain load and store, no lock and
//! no read-modify-write. A new run moves the old one into the slot's locked map. Readers lock
//! each slot's map and add the runs whose deadline has passed; a run being written at that
//! instant may be read half-updated, so figures are exact when no other thread is changing the
//! tier, as `len` promises. Counts are signed: an entry may be added in one slot and taken
//! away in another, and only the sum over all slots means anything.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

/// Slots owned by threads; one more is the locked path of threads without a slot.
const SLOTS: usize = 16;
/// The deadline of a slot's run when it has none.
const NO_RUN: u64 = u64::MAX;

/// A run of changes with one deadline, written only by the slot's owner.
struct Run {
    deadline: AtomicU64,
    count: AtomicI64,
    weight: AtomicI64,
}

impl Default for Run {
    fn default() -> Self {
        Self {
            deadline: AtomicU64::new(NO_RUN),
            count: AtomicI64::new(0),
            weight: AtomicI64::new(0),
        }
    }
}

impl Run {
    /// Adds to the run if it has `deadline`: a plain load and store (one writer).
    #[inline]
    fn extend(&self, deadline: u64, count: i64, weight: i64) -> bool {
        if self.deadline.load(Relaxed) != deadline {
            return false;
        }
        self.count.store(self.count.load(Relaxed) + count, Relaxed);
        self.weight
            .store(self.weight.load(Relaxed) + weight, Relaxed);
        true
    }

    /// Starts a new run (under the slot's lock); returns the old one.
    fn restart(&self, deadline: u64, count: i64, weight: i64) -> Option<(u64, i64, i64)> {
        let old = (
            self.deadline.load(Relaxed),
            self.count.load(Relaxed),
            self.weight.load(Relaxed),
        );
        self.count.store(count, Relaxed);
        self.weight.store(weight, Relaxed);
        self.deadline.store(deadline, Relaxed);
        (old.0 != NO_RUN).then_some(old)
    }

    /// The run's count and weight if its deadline is before `now`.
    fn expired(&self, now: u64) -> (i64, i64) {
        let d = self.deadline.load(Relaxed);
        if d == NO_RUN || d >= now {
            return (0, 0);
        }
        (self.count.load(Relaxed), self.weight.load(Relaxed))
    }
}

/// What a slot keeps under its lock.
#[derive(Default)]
struct Rest {
    /// Count and weight per deadline not yet passed when last read.
    pending: BTreeMap<u64, (i64, i64)>,
    /// Count and weight of entries whose deadline had passed when last read.
    expired: (i64, i64),
    /// The clock reading of the last read: deadlines strictly below it are in `expired` (an
    /// entry is live while `now <= deadline`).
    watermark: u64,
}

impl Rest {
    fn apply(&mut self, deadline: u64, count: i64, weight: i64) {
        if deadline < self.watermark {
            self.expired.0 += count;
            self.expired.1 += weight;
            return;
        }
        let e = self.pending.entry(deadline).or_insert((0, 0));
        e.0 += count;
        e.1 += weight;
        if *e == (0, 0) {
            self.pending.remove(&deadline);
        }
    }

    fn advance(&mut self, now: u64) -> (i64, i64) {
        if now > self.watermark {
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

/// One thread's part of the ledger: its runs of additions and removals, and the rest.
#[derive(Default)]
#[repr(align(128))] // one slot per cache line pair: owners do not share lines
struct Slot {
    additions: Run,
    removals: Run,
    rest: Mutex<Rest>,
}

impl Slot {
    /// Extends the thread's run in line; a new run, or a thread without a slot, takes the
    /// slot's lock out of line (kept apart, the common case saves the call and the registers
    /// the locked path needs: about 25 instructions an insert's change).
    #[inline(always)]
    fn apply(&self, owned: bool, deadline: u64, count: i64, weight: i64) {
        let run = if count > 0 {
            &self.additions
        } else {
            &self.removals
        };
        if owned && run.extend(deadline, count, weight) {
            return;
        }
        self.apply_locked(run, owned, deadline, count, weight);
    }

    #[cold]
    #[inline(never)]
    fn apply_locked(&self, run: &Run, owned: bool, deadline: u64, count: i64, weight: i64) {
        let mut rest = lock(&self.rest);
        if !owned {
            rest.apply(deadline, count, weight);
        } else if let Some((d, c, w)) = run.restart(deadline, count, weight) {
            // The old run goes to the map.
            rest.apply(d, c, w);
        }
    }

    fn expired(&self, now: u64) -> (i64, i64) {
        let mut rest = lock(&self.rest);
        let (mut c, mut w) = rest.advance(now);
        for run in [&self.additions, &self.removals] {
            let (rc, rw) = run.expired(now);
            c += rc;
            w += rw;
        }
        (c, w)
    }
}

fn lock(m: &Mutex<Rest>) -> MutexGuard<'_, Rest> {
    // The critical sections hold no invariant a panic could break halfway.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Which slot this thread owns, process-wide (the same index in every ledger): handed out
/// once per thread, given back when the thread ends.
struct Claim(usize);

static NEXT: AtomicUsize = AtomicUsize::new(0);
static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

impl Claim {
    fn take() -> Self {
        let free = FREE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let i = free.unwrap_or_else(|| {
            NEXT.fetch_update(Relaxed, Relaxed, |n| (n < SLOTS).then_some(n + 1))
                .unwrap_or(SLOTS)
        });
        Self(i)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.0 < SLOTS {
            // The lock hands this thread's last writes to the next owner.
            FREE.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(self.0);
        }
    }
}

thread_local! {
    static CLAIM: Claim = Claim::take();
}

/// This thread's slot index ([`SLOTS`]: the locked path).
#[inline]
fn slot_index() -> usize {
    CLAIM.try_with(|c| c.0).unwrap_or(SLOTS)
}

/// Expired-but-held totals of a tier. See the module docs.
pub(crate) struct Ledger {
    slots: Box<[Slot]>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self {
            slots: (0..=SLOTS).map(|_| Slot::default()).collect(),
        }
    }
}

/// This thread's slot of a ledger, for several changes with one lookup.
pub(crate) struct Writer<'a> {
    slot: &'a Slot,
    owned: bool,
}

impl Writer<'_> {
    /// An entry with `deadline` and `weight` entered the tier.
    #[inline]
    pub(crate) fn add(&self, deadline: u64, weight: u64) {
        self.slot.apply(self.owned, deadline, 1, clamp(weight));
    }

    /// An entry with `deadline` and `weight` left the tier.
    #[inline]
    pub(crate) fn sub(&self, deadline: u64, weight: u64) {
        self.slot.apply(self.owned, deadline, -1, -clamp(weight));
    }
}

fn clamp(weight: u64) -> i64 {
    i64::try_from(weight).unwrap_or(i64::MAX)
}

impl Ledger {
    /// This thread's slot.
    #[inline]
    pub(crate) fn writer(&self) -> Writer<'_> {
        let i = slot_index();
        Writer {
            slot: &self.slots[i],
            owned: i < SLOTS,
        }
    }

    /// An entry with `deadline` and `weight` entered the tier.
    #[cfg(test)]
    pub(crate) fn add(&self, deadline: u64, weight: u64) {
        self.writer().add(deadline, weight);
    }

    /// An entry with `deadline` and `weight` left the tier.
    pub(crate) fn sub(&self, deadline: u64, weight: u64) {
        self.writer().sub(deadline, weight);
    }

    /// The count and weight of held entries that have expired at `now` (an entry is live while
    /// `now <= deadline`).
    pub(crate) fn expired(&self, now: u64) -> (u64, u64) {
        let (mut c, mut w) = (0i64, 0i64);
        for slot in self.slots.iter() {
            let (sc, sw) = slot.expired(now);
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

    /// More threads than slots (some take the locked path), threads that end and hand their
    /// slot on, and readers all the while: once quiet, the totals are exact.
    #[test]
    fn stress_threads_beyond_the_slots_and_slots_handed_on() {
        let l = std::sync::Arc::new(Ledger::default());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (l, stop) = (l.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Relaxed) {
                    // At 1 nothing has expired yet (every deadline is 1 or later).
                    let (c, _) = l.expired(1);
                    assert!(c <= 100_000, "a wild total: {c}");
                    reads += 1;
                }
                reads
            })
        };
        // Two waves of 24 threads: the second reuses the first's slots.
        for wave in 0..2u64 {
            let writers: Vec<_> = (0..24u64)
                .map(|t| {
                    let l = l.clone();
                    std::thread::spawn(move || {
                        for i in 0..2_000u64 {
                            // Runs of one deadline, as inserts with a default TTL make.
                            let d = 1 + (i / 100 + t + wave) % 60;
                            l.add(d, 3);
                            if i % 4 == 0 {
                                l.sub(d, 3);
                            }
                        }
                    })
                })
                .collect();
            for w in writers {
                w.join().unwrap();
            }
        }
        stop.store(true, Relaxed);
        assert!(reader.join().unwrap() > 0);
        // Only the entries with a deadline before 31 count at 31.
        let mut model = 0u64;
        for wave in 0..2u64 {
            for t in 0..24u64 {
                for i in 0..2_000u64 {
                    let d = 1 + (i / 100 + t + wave) % 60;
                    if d < 31 && i % 4 != 0 {
                        model += 1;
                    }
                }
            }
        }
        assert_eq!(l.expired(31), (model, 3 * model));
        // Each thread added 2,000 and removed 500; every deadline has passed at 1,000.
        let held: u64 = 2 * 24 * 1_500;
        assert_eq!(l.expired(1_000), (held, 3 * held));
    }
}
