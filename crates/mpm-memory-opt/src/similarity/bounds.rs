//! Cheap upper bounds on the LCS of two strings, so that pairs that cannot reach a threshold are
//! skipped: the length bound (the shorter length) and the character-multiset bound of
//! [`Histogram`].

#[cfg(test)]
use super::ratio_of;

/// The histogram bucket of a character: letters (either case), digits, space and common
/// punctuation get their own buckets; the rest share 16 (sharing only loosens the bound).
#[inline]
fn bucket(c: char) -> usize {
    const TABLE: [u8; 128] = {
        let mut t = [0u8; 128];
        let mut i = 0;
        while i < 128 {
            let c = i as u8;
            t[i] = match c {
                b'a'..=b'z' => c - b'a',
                b'A'..=b'Z' => c - b'A',
                b'0'..=b'9' => 26 + c - b'0',
                b' ' => 36,
                b'.' => 37,
                b'/' => 38,
                b'-' => 39,
                b'_' => 40,
                b':' => 41,
                b',' => 42,
                b'(' | b')' => 43,
                b'\'' | b'"' | b'`' => 44,
                b'=' => 45,
                b'<' | b'>' => 46,
                b'#' => 47,
                _ => 48 + (c % 16),
            };
            i += 1;
        }
        t
    };
    let code = c as u32;
    if code < 128 {
        TABLE[code as usize] as usize
    } else {
        48 + (code % 16) as usize
    }
}

/// A 64-bucket character histogram: `sum(min(ha, hb))` bounds every common subsequence.
#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    counts: [u8; 64],
    /// `false` when a count saturated, so the bound would not hold.
    exact: bool,
}

impl Histogram {
    pub(crate) fn new(s: &[char]) -> Histogram {
        let mut counts = [0u8; 64];
        let mut exact = true;
        for c in s {
            let slot = &mut counts[bucket(*c)];
            if *slot == u8::MAX {
                exact = false;
            } else {
                *slot += 1;
            }
        }
        Histogram { counts, exact }
    }

    /// An upper bound on the LCS of the two strings, if the histograms are exact.
    #[inline]
    pub(crate) fn common(&self, other: &Histogram) -> Option<usize> {
        if !(self.exact && other.exact) {
            return None;
        }
        // Byte minimums (the compiler makes them vector instructions), then their sum in four
        // 16-bit lanes of one word (at most 8 * 510 per lane).
        let mut mins = [0u8; 64];
        for ((m, a), b) in mins.iter_mut().zip(&self.counts).zip(&other.counts) {
            *m = (*a).min(*b);
        }
        const LOW: u64 = 0x00FF_00FF_00FF_00FF;
        let mut lanes = 0u64;
        for chunk in mins.chunks_exact(8) {
            let w = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
            lanes += (w & LOW) + ((w >> 8) & LOW);
        }
        Some((lanes.wrapping_mul(0x0001_0001_0001_0001) >> 48) as usize)
    }
}

/// An upper bound on the similarity of `a` and `b` under any metric that is
/// [`Similarity::bounded_by_lcs`]: the length bound and the character-multiset bound.
#[cfg(test)]
pub(crate) fn upper_bound(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let common = Histogram::new(&a)
        .common(&Histogram::new(&b))
        .unwrap_or(a.len().min(b.len()));
    ratio_of(common.min(a.len().min(b.len())), a.len() + b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::similarity::{Difflib, Indel, Similarity};
    use proptest::prelude::*;

    #[test]
    fn bounds_hold() {
        for (a, b) in [("abc", "abd"), ("kitten", "sitting"), ("", "x"), ("ü", "ü")] {
            assert!(upper_bound(a, b) >= Indel.ratio(a, b));
            assert!(Indel.ratio(a, b) >= Difflib.ratio(a, b));
        }
    }

    proptest! {
        #[test]
        fn the_bound_is_never_below_the_indel_ratio(a in "[ab é]{0,80}", b in "[abc é]{0,80}") {
            prop_assert!(upper_bound(&a, &b) >= Indel.ratio(&a, &b));
        }
    }
}
