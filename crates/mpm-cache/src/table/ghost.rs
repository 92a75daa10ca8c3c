//! The ghost records of a shard: the keys evicted lately from the cold ring, remembered by a
//! 16-bit fingerprint of their hash, in buckets of four (one word each).
//!
//! A key that misses but left the cold ring lately enters the hot ring directly. quick_cache
//! keeps such records as entries of its slab and its index (a slot as wide as a resident entry
//! each, which at a ghost allocation of 1.0 doubles the memory an insert into a full cache
//! walks); here a record is about two bytes. A new record pushes the oldest of its bucket out,
//! so the set is lossy: most of the last `capacity` records survive, and a few older ones.
//! Replayed with `cargo xtask trace --seeds 0-7` (the L1's default policy; quick_cache's exact
//! records gave 8 cells below the goal in all, mean lead +1.81, on the shared traces, and 50,
//! +2.35, on 11 held-out ones): four per bucket 9 and +1.72, 44 and +2.40; eight per bucket 10
//! and +1.77; one record per place (direct-mapped) 19 and +1.44, 64 and +2.29, its records
//! dying young (ARC P3 at 10% 1.5 points lower with every insert admitted).

/// Lossy ghost records: buckets of [`WAYS`] fingerprints, the newest in the low lane; 0 is no
/// record.
pub(crate) struct Ghost {
    buckets: Box<[u64]>,
}

/// Fingerprints a bucket holds (16 bits each, one word).
const WAYS: usize = 4;
/// The lowest bit of each lane.
const LOW: u64 = 0x0001_0001_0001_0001;
/// The highest bit of each lane.
const HIGH: u64 = 0x8000_8000_8000_8000;

/// The fingerprint of `hash`: its top 16 bits (the bucket comes from the low 32), never 0.
#[inline]
fn fingerprint(hash: u64) -> u64 {
    (hash >> 48) | 1
}

impl Ghost {
    /// Room for about `capacity` records (none when 0).
    pub(crate) fn new(capacity: usize) -> Self {
        let n = capacity.div_ceil(WAYS).min(u32::MAX as usize);
        Self {
            buckets: vec![0; n].into_boxed_slice(),
        }
    }

    /// The bucket of `hash`: its low 32 bits scaled to the number of buckets (any number, not
    /// only a power of two, so that the records are about as many as asked for).
    #[inline]
    fn bucket(&mut self, hash: u64) -> Option<&mut u64> {
        let i = ((hash & 0xffff_ffff) * self.buckets.len() as u64) >> 32;
        self.buckets.get_mut(i as usize)
    }

    /// Remembers that the key of `hash` was evicted: its fingerprint enters its bucket, whose
    /// oldest record leaves.
    #[inline]
    pub(crate) fn record(&mut self, hash: u64) {
        if let Some(b) = self.bucket(hash) {
            *b = (*b << 16) | fingerprint(hash);
        }
    }

    /// Whether the key of `hash` was evicted lately; forgets it if so.
    #[inline]
    pub(crate) fn take(&mut self, hash: u64) -> bool {
        let fp = fingerprint(hash);
        let Some(b) = self.bucket(hash) else {
            return false;
        };
        // The lanes equal to `fp` are the zero lanes of `x`; the lowest is found in a few
        // word operations (a borrow only ever runs from a zero lane upwards, so the lowest
        // flagged lane is a true zero).
        let x = *b ^ (fp * LOW);
        let zero = x.wrapping_sub(LOW) & !x & HIGH;
        if zero == 0 {
            return false;
        }
        let shift = zero.trailing_zeros() & !15;
        *b &= !(0xffff << shift);
        true
    }

    /// The bytes the records take.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.buckets.len() * size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::Ghost;

    #[test]
    fn a_recorded_hash_is_taken_once() {
        let mut g = Ghost::new(100);
        g.record(42);
        assert!(g.take(42));
        assert!(!g.take(42), "taken already");
        assert!(!g.take(7), "never recorded");
    }

    #[test]
    fn a_bucket_keeps_its_four_newest_records() {
        let mut g = Ghost::new(4);
        // One bucket: every hash lands in it.
        let hashes: Vec<u64> = (1..=5u64).map(|i| i << 49 | 3).collect();
        for &h in &hashes {
            g.record(h);
        }
        assert!(!g.take(hashes[0]), "the oldest left");
        assert!(hashes[1..].iter().all(|&h| g.take(h)));
    }

    #[test]
    fn a_record_is_found_in_any_lane_and_only_its_own_is_cleared() {
        for lane in 0..4 {
            let mut g = Ghost::new(4);
            let hashes: Vec<u64> = (1..=4u64).map(|i| i << 49 | 3).collect();
            for &h in &hashes {
                g.record(h);
            }
            // The newest is in lane 0: the one in `lane` is hashes[3 - lane].
            let h = hashes[3 - lane];
            assert!(g.take(h), "lane {lane}");
            assert!(!g.take(h), "lane {lane} cleared");
            for &other in hashes.iter().filter(|&&o| o != h) {
                assert!(g.take(other), "lane {lane}: {other:x} kept");
            }
        }
        // A fingerprint one above a stored one, and one below, are not found.
        let mut g = Ghost::new(4);
        g.record(5 << 48);
        assert!(!g.take(4 << 48 | 1 << 49) && !g.take(7 << 48));
    }

    #[test]
    fn without_room_nothing_is_remembered() {
        let mut g = Ghost::new(0);
        g.record(42);
        assert!(!g.take(42));
        assert_eq!(g.bytes(), 0);
    }

    #[test]
    fn most_recent_records_survive() {
        let n = 1024;
        let mut g = Ghost::new(n);
        let hash = |k: u64| crate::admission::mix(k);
        for k in 0..n as u64 {
            g.record(hash(k));
        }
        let recent = (n as u64 * 3 / 4..n as u64)
            .filter(|&k| g.take(hash(k)))
            .count();
        // Of the last quarter, each shares its bucket with one newer record on average and
        // leaves only with four: about 98% survive.
        assert!(recent > n / 4 * 9 / 10, "{recent} of {}", n / 4);
        assert_eq!(g.bytes(), 2 * n);
    }
}
