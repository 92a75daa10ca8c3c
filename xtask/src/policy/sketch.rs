//! A count-min sketch of 4-bit counters that ages, the frequency estimate of TinyLFU.
//!
//! The layout follows Caffeine's `FrequencySketch`: one `u64` word holds sixteen 4-bit
//! counters; a key has four counters (one per row hash), its estimate is their minimum. After
//! `10 x capacity` increments every counter is halved, so old popularity fades.

/// Frequencies of keys, by their 64-bit hash.
pub(crate) struct FrequencySketch {
    table: Vec<u64>,
    mask: u64,
    additions: u32,
    period: u32,
}

const SEEDS: [u64; 4] = [
    0xc3a5_c85c_97cb_3127,
    0xb492_b66f_be98_f273,
    0x9ae1_6a3b_2f90_404f,
    0xcbf2_9ce4_8422_2325,
];

impl FrequencySketch {
    /// A sketch for a cache of `capacity` entries with `1 / 2^shrink` word (16 counters) per
    /// entry.
    pub(crate) fn sized(capacity: usize, shrink: u32) -> Self {
        let words = (capacity >> shrink.min(8)).max(16).next_power_of_two();
        Self {
            table: vec![0; words],
            mask: words as u64 - 1,
            additions: 0,
            period: (capacity.max(16) as u32).saturating_mul(10),
        }
    }

    /// The word and the bit offset of `hash`'s counter in row `row`.
    #[inline]
    fn slot(&self, hash: u64, row: usize) -> (usize, u32) {
        let h = (hash ^ SEEDS[row]).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let h = h ^ (h >> 29);
        ((h & self.mask) as usize, ((h >> 60) as u32) << 2)
    }

    /// Counts one access of the key with this hash.
    #[inline]
    pub(crate) fn increment(&mut self, hash: u64) {
        let mut added = false;
        for row in 0..4 {
            let (i, shift) = self.slot(hash, row);
            if (self.table[i] >> shift) & 0xf < 15 {
                self.table[i] += 1 << shift;
                added = true;
            }
        }
        if added {
            self.additions += 1;
            if self.additions >= self.period {
                self.age();
            }
        }
    }

    /// The estimated number of recent accesses of the key with this hash (0 to 15).
    #[inline]
    pub(crate) fn estimate(&self, hash: u64) -> u8 {
        (0..4)
            .map(|row| {
                let (i, shift) = self.slot(hash, row);
                ((self.table[i] >> shift) & 0xf) as u8
            })
            .min()
            .unwrap_or(0)
    }

    /// Halves every counter.
    fn age(&mut self) {
        for w in &mut self.table {
            *w = (*w >> 1) & 0x7777_7777_7777_7777;
        }
        self.additions /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_at_fifteen() {
        let mut s = FrequencySketch::sized(1024, 0);
        for _ in 0..5 {
            s.increment(42);
        }
        assert_eq!(s.estimate(42), 5);
        for _ in 0..20 {
            s.increment(42);
        }
        assert_eq!(s.estimate(42), 15);
        assert_eq!(s.estimate(43), 0);
    }

    #[test]
    fn aging_halves_the_counts() {
        let mut s = FrequencySketch::sized(16, 0);
        for _ in 0..8 {
            s.increment(7);
        }
        // Increments of other keys reach the period (160) and halve everything once.
        let mut k = 1000u64;
        while s.additions > 0 && s.additions < s.period - 1 {
            s.increment(k.wrapping_mul(0x2545_f491_4f6c_dd1d));
            k += 1;
        }
        s.increment(k.wrapping_mul(0x2545_f491_4f6c_dd1d));
        assert!(s.additions < s.period / 2 + 1, "aged once");
        assert!(s.estimate(7) < 8, "{}", s.estimate(7));
    }
}
