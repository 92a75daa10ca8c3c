//! An adaptive admission layer over quick_cache: TinyLFU admission switched on and off by
//! sampled shadow caches ("set dueling").
//!
//! quick_cache (S3-FIFO-like: a cold queue for new entries, a hot queue, a ghost list of recently
//! evicted keys) wins on recency-heavy traces; TinyLFU admission (moka, Caffeine) wins on loops
//! and scans, where it refuses a new key that is not more frequent than the key it would evict.
//! Neither wins everywhere, so this layer runs both on a small sample of the key space and lets
//! the main cache follow the one that hits more:
//!
//! - One [`FrequencySketch`] counts every access (by key hash).
//! - The main cache is a quick_cache. With the filter on, a miss into a full cache is inserted
//!   only if the key's estimated frequency beats the last evicted key's. quick_cache does not say
//!   which key an insert will evict, so the key it evicted last (reported by its `Lifecycle`
//!   hook) stands for the next victim.
//! - One shadow quick_cache per dueling mode (by default: admit all, TinyLFU, TinyLFU admitting
//!   ties) sees only the keys whose hash falls
//!   in a sample (1 in 2^s, chosen so a shadow holds about `shadow_entries` keys) and have the
//!   main capacity scaled by the same rate. They store only keys, no values.
//! - Every `window` sampled accesses the main cache takes the mode of the shadow that scored
//!   more hits (by a margin), and the scores are halved, so the choice follows phases.

use quick_cache::{Lifecycle, UnitWeighter, unsync};

use super::sketch::FrequencySketch;
use super::{Fixed, mix};

/// How the cache admits a missed key into a full cache. `0` admits every key (quick_cache as it
/// is); `n >= 1` admits a key only if `estimate(key) + (n - 1) > bar`, where the bar is the
/// highest estimate of the last victims: `1` refuses ties (TinyLFU), `2` admits them, `3`
/// admits a key one access short of the bar.
pub(crate) type Admission = u8;

/// The highest admission mode.
pub(crate) const MAX_ADMISSION: Admission = 7;

/// The knobs of the layer; [`Config::default`] holds the tuned values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    /// quick_cache's hot queue share of the capacity.
    pub(crate) hot_allocation: f64,
    /// quick_cache's ghost list size, as a share of the capacity.
    pub(crate) ghost_allocation: f64,
    /// How many keys a shadow cache aims to hold (it samples 1 in 2^s keys to get there).
    pub(crate) shadow_entries: usize,
    /// The decision window, in sampled accesses per shadow entry.
    pub(crate) window_per_entry: u32,
    /// How many more hits (in percent of the window) another mode needs to take over.
    pub(crate) margin_percent: u32,
    /// At the end of a window the scores lose `1 / 2^memory_shift` (1: they halve).
    pub(crate) memory_shift: u32,
    /// How many recent victims the candidate must beat (the bar is their highest estimate).
    pub(crate) bar_victims: usize,
    /// The admission modes that duel, as a bit set (bit `n` = mode `n`).
    pub(crate) modes: u8,
    /// Whether only keys evicted from quick_cache's cold queue stand for the next victim.
    pub(crate) cold_victims_only: bool,
    /// One admission mode, no dueling; `None` adapts.
    pub(crate) forced: Option<Admission>,
    /// A hit counts in the sketch one time in `2^hit_sample_shift` (a miss always counts), or
    /// every time where every key is sampled.
    pub(crate) hit_sample_shift: u32,
    /// Which sample of the keys the shadows see (any value; to check the choice is robust).
    pub(crate) sample_seed: u64,
    /// Whether a hit reaches the shadows only when it is counted in the sketch (one hit in
    /// `2^hit_sample_shift`), as a concurrent cache does to keep its hot get cheap.
    pub(crate) thin_duel_hits: bool,
    /// The sketch has `1 / 2^sketch_shrink` word (16 counters) per entry.
    pub(crate) sketch_shrink: u32,
    /// Mixed into every key before it is hashed for the sketch, the sample and the victims
    /// (0: none): another seed is another draw of the hash collisions, to see how much of a
    /// figure is luck.
    pub(crate) hash_seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            hot_allocation: 0.97,
            ghost_allocation: 1.0,
            shadow_entries: 512,
            window_per_entry: 2,
            margin_percent: 0,
            memory_shift: 3,
            bar_victims: 1,
            modes: 0b111,
            forced: None,
            cold_victims_only: false,
            sample_seed: 0,
            hit_sample_shift: 4,
            thin_duel_hits: false,
            sketch_shrink: 0,
            hash_seed: 0,
        }
    }
}

/// How many recent victims a filter remembers.
const VICTIMS: usize = 8;

/// Records the key that an insert evicted.
#[derive(Clone, Copy, Default)]
struct LastEvicted;

impl Lifecycle<u64, ()> for LastEvicted {
    /// The last key evicted from the cold queue, and the last from the hot queue.
    type RequestState = (Option<u64>, Option<u64>);

    fn on_evict_cold(&self, state: &mut Self::RequestState, key: u64, _: ()) {
        state.0 = Some(key);
    }

    fn on_evict_hot(&self, state: &mut Self::RequestState, key: u64, _: ()) {
        state.1 = Some(key);
    }
}

/// A quick_cache with an admission test in front of its inserts.
struct Filtered {
    cache: unsync::Cache<u64, (), UnitWeighter, Fixed, LastEvicted>,
    /// The hashes of the last evicted keys (a ring): the stand-ins for the next victim.
    victims: [u64; VICTIMS],
    /// Where the next victim goes in `victims`.
    next: usize,
    /// How many of `victims` are set.
    known: usize,
    /// How many recent victims the candidate must beat.
    bar: usize,
    /// Whether only keys evicted from the cold queue stand for the next victim.
    cold_only: bool,
    /// [`Config::hash_seed`].
    seed: u64,
}

impl Filtered {
    fn new(capacity: usize, config: &Config) -> Self {
        let mut opts = quick_cache::OptionsBuilder::new();
        opts.estimated_items_capacity(capacity)
            .weight_capacity(capacity as u64)
            .hot_allocation(config.hot_allocation)
            .ghost_allocation(config.ghost_allocation);
        let opts = opts.build().expect("valid quick_cache options");
        Self {
            cache: unsync::Cache::with_options(opts, UnitWeighter, Fixed::default(), LastEvicted),
            victims: [0; VICTIMS],
            next: 0,
            known: 0,
            bar: config.bar_victims.clamp(1, VICTIMS),
            cold_only: config.cold_victims_only,
            seed: config.hash_seed,
        }
    }

    /// Looks `key` up; on a miss inserts it unless `admission` refuses it. Returns the hit.
    #[inline]
    fn access(
        &mut self,
        key: u64,
        hash: u64,
        admission: Admission,
        sketch: &FrequencySketch,
    ) -> bool {
        self.cache.get(&key).is_some() || self.miss(key, hash, admission, sketch)
    }

    /// Inserts the missed `key` unless `admission` refuses it. Returns false (a miss).
    fn miss(
        &mut self,
        key: u64,
        hash: u64,
        admission: Admission,
        sketch: &FrequencySketch,
    ) -> bool {
        if admission > 0 && self.known > 0 && self.cache.weight() >= self.cache.capacity() {
            let bar = (1..=self.known.min(self.bar))
                .map(|back| sketch.estimate(self.victims[(self.next + VICTIMS - back) % VICTIMS]))
                .max()
                .unwrap_or(0);
            if sketch.estimate(hash) + (admission - 1) <= bar {
                return false;
            }
        }
        let mut evicted = (None, None);
        self.cache.insert_with_lifecycle(key, (), &mut evicted);
        let evicted = match self.cold_only {
            true => evicted.0,
            false => evicted.0.or(evicted.1),
        };
        if let Some(k) = evicted {
            self.victims[self.next] = mix(k ^ self.seed);
            self.next = (self.next + 1) % VICTIMS;
            self.known = (self.known + 1).min(VICTIMS);
        }
        false
    }
}

/// The adaptive cache (keys only; the prototype measures hit ratios).
pub(crate) struct Adaptive {
    main: Filtered,
    /// One shadow per dueling mode.
    shadows: Vec<(Admission, Filtered, u32)>,
    sketch: FrequencySketch,
    sample_mask: u64,
    sample_seed: u64,
    sampled: u32,
    window: u32,
    margin: u32,
    memory: u32,
    admission: Admission,
    switches: u32,
    hits: u32,
    hit_mask: u32,
    thin_duel_hits: bool,
    hash_seed: u64,
}

impl Adaptive {
    /// A cache of `capacity` entries.
    pub(crate) fn new(capacity: usize, config: Config) -> Self {
        let capacity = capacity.max(1);
        // Sample 1 in 2^s keys, the largest s that leaves a shadow `shadow_entries` keys.
        let mut shift = 0;
        while (capacity >> (shift + 1)) >= config.shadow_entries.max(1) {
            shift += 1;
        }
        let shadow_capacity = (capacity >> shift).max(1);
        let window = (shadow_capacity as u32).saturating_mul(config.window_per_entry.max(1));
        let shadows = match config.forced {
            Some(_) => Vec::new(),
            None => (0..=MAX_ADMISSION)
                .filter(|m| config.modes & (1 << m) != 0)
                .map(|m| (m, Filtered::new(shadow_capacity, &config), 0))
                .collect(),
        };
        Self {
            main: Filtered::new(capacity, &config),
            shadows,
            sketch: FrequencySketch::sized(capacity, config.sketch_shrink),
            sample_mask: (1u64 << shift) - 1,
            sample_seed: config.sample_seed,
            sampled: 0,
            window,
            margin: window / 100 * config.margin_percent,
            memory: config.memory_shift.clamp(1, 16),
            admission: config.forced.unwrap_or(0),
            switches: 0,
            hits: 0,
            // Where every key is sampled, every hit is hashed anyway: all count.
            hit_mask: match shift {
                0 => 0,
                _ => (1u32 << config.hit_sample_shift.min(16)) - 1,
            },
            thin_duel_hits: config.thin_duel_hits,
            hash_seed: config.hash_seed,
        }
    }

    /// Looks `key` up; inserts it on a miss if admitted. Returns whether it hit.
    #[inline]
    pub(crate) fn access(&mut self, key: u64) -> bool {
        let hash = mix(key ^ self.hash_seed);
        let hit = self.main.cache.get(&key).is_some();
        // Every miss counts in the sketch; a hit counts one time in 2^hit_sample_shift, which
        // keeps the hot get path cheap.
        if hit {
            self.hits = self.hits.wrapping_add(1);
        }
        let counted = !hit || self.hits & self.hit_mask == 0;
        if counted {
            self.sketch.increment(hash);
        }
        if !self.shadows.is_empty()
            && (counted || !self.thin_duel_hits)
            && ((hash >> 40) + self.sample_seed) & self.sample_mask == 0
        {
            self.duel(key, hash);
        }
        hit || self.main.miss(key, hash, self.admission, &self.sketch)
    }

    /// Replays a sampled access in every shadow and, at the end of a window, picks the mode.
    fn duel(&mut self, key: u64, hash: u64) {
        for (mode, shadow, score) in &mut self.shadows {
            if shadow.access(key, hash, *mode, &self.sketch) {
                *score += 1;
            }
        }
        self.sampled += 1;
        if self.sampled < self.window {
            return;
        }
        let current = self
            .shadows
            .iter()
            .find(|s| s.0 == self.admission)
            .map_or(0, |s| s.2);
        let best = self
            .shadows
            .iter()
            .max_by_key(|s| s.2)
            .expect("at least one shadow");
        if best.2 > current + self.margin && best.0 != self.admission {
            self.admission = best.0;
            self.switches += 1;
        }
        for s in &mut self.shadows {
            s.2 -= s.2 >> self.memory;
        }
        self.sampled = 0;
    }

    /// How many times the main cache changed mode.
    #[cfg(test)]
    pub(crate) fn switches(&self) -> u32 {
        self.switches
    }

    /// The admission mode the main cache follows now.
    #[cfg(test)]
    pub(crate) fn admission(&self) -> Admission {
        self.admission
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(cache: &mut Adaptive, keys: impl Iterator<Item = u64>) -> usize {
        keys.filter(|&k| cache.access(k)).count()
    }

    /// A loop over 1,000 keys, `rounds` times.
    fn looping(rounds: u64) -> impl Iterator<Item = u64> {
        (0..rounds * 1_000).map(|i| i % 1_000)
    }

    #[test]
    fn with_the_filter_off_it_is_quick_cache() {
        let config = Config {
            forced: Some(0),
            ..Config::default()
        };
        let mut a = Adaptive::new(100, config);
        let mut q = Filtered::new(100, &config);
        let sketch = FrequencySketch::sized(100, 0);
        for i in 0..20_000u64 {
            let k = (i * i) % 777;
            assert_eq!(a.access(k), q.access(k, mix(k), 0, &sketch), "access {i}");
        }
    }

    #[test]
    fn the_filter_keeps_a_loop_larger_than_the_cache() {
        let on = Config {
            forced: Some(1),
            ..Config::default()
        };
        let mut a = Adaptive::new(100, on);
        hits(&mut a, looping(5));
        let h = hits(&mut a, looping(20));
        // At best 100 of every 1,000 accesses hit.
        assert!(h > 20 * 100 * 8 / 10, "{h}");
    }

    #[test]
    fn dueling_turns_the_filter_on_for_a_loop_and_off_for_a_recency_trace() {
        let mut a = Adaptive::new(100, Config::default());
        hits(&mut a, looping(20));
        assert_ne!(a.admission(), 0, "a loop wants the filter");
        // Then a sliding window of 80 recent keys: every new key is seen once before it is
        // reused, so refusing new keys costs hits.
        let h = hits(
            &mut a,
            (0..40_000u64).map(|i| 1_000_000 + i / 4 + (i * 7) % 80),
        );
        assert_eq!(
            a.admission(),
            0,
            "recency wants quick_cache as it is ({h} hits)"
        );
        assert!(a.switches() >= 2);
    }
}
