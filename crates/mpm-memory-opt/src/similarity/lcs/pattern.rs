//! The general bit-parallel LCS: a pattern of any length and any characters, as bit masks.

use super::{lcs_step, lcs_step_256, matched_128, matched_256, split_bound_128, split_bound_256};
use crate::similarity::char_map::CharMap;

/// Bit masks of a pattern's characters, one bit per position, for the bit-parallel LCS.
pub(crate) struct PatternMasks {
    words: usize,
    /// The pattern's length in characters.
    len: usize,
    /// Patterns of up to 128 characters: one `u128` per ASCII character.
    small: Option<Box<[u128; 128]>>,
    small_other: CharMap<u128>,
    /// Patterns of 129 to 256 characters: two `u128` per ASCII character.
    medium: Option<Box<[[u128; 2]; 128]>>,
    medium_other: CharMap<[u128; 2]>,
    ascii: Vec<u64>,
    other: CharMap<Vec<u64>>,
}

impl PatternMasks {
    pub(crate) fn new(a: &[char]) -> PatternMasks {
        PatternMasks::with_table(a, None)
    }

    /// Builds masks for `a`, reusing a zeroed table if one is given.
    pub(crate) fn with_table(a: &[char], table: Option<Box<[u128; 128]>>) -> PatternMasks {
        let words = a.len().div_ceil(64).max(1);
        if words <= 2 {
            let mut t = table.unwrap_or_else(|| Box::new([0u128; 128]));
            let mut o: CharMap<u128> = CharMap::default();
            for (i, c) in a.iter().enumerate() {
                let code = *c as u32;
                if code < 128 {
                    t[code as usize] |= 1u128 << i;
                } else {
                    *o.entry(*c).or_insert(0) |= 1u128 << i;
                }
            }
            return PatternMasks {
                words,
                len: a.len(),
                small: Some(t),
                small_other: o,
                medium: None,
                medium_other: CharMap::default(),
                ascii: Vec::new(),
                other: CharMap::default(),
            };
        }
        if words <= 4 {
            let mut t = Box::new([[0u128; 2]; 128]);
            let mut o: CharMap<[u128; 2]> = CharMap::default();
            for (i, c) in a.iter().enumerate() {
                let code = *c as u32;
                let slot = if code < 128 {
                    &mut t[code as usize]
                } else {
                    o.entry(*c).or_insert([0, 0])
                };
                slot[i / 128] |= 1u128 << (i % 128);
            }
            return PatternMasks {
                words,
                len: a.len(),
                small: None,
                small_other: CharMap::default(),
                medium: Some(t),
                medium_other: o,
                ascii: Vec::new(),
                other: CharMap::default(),
            };
        }
        let mut ascii = vec![0u64; 128 * words];
        let mut other: CharMap<Vec<u64>> = CharMap::default();
        for (i, c) in a.iter().enumerate() {
            let (w, bit) = (i / 64, 1u64 << (i % 64));
            let code = *c as u32;
            if code < 128 {
                ascii[code as usize * words + w] |= bit;
            } else {
                other.entry(*c).or_insert_with(|| vec![0; words])[w] |= bit;
            }
        }
        PatternMasks {
            words,
            len: a.len(),
            small: None,
            small_other: CharMap::default(),
            medium: None,
            medium_other: CharMap::default(),
            ascii,
            other,
        }
    }

    /// The `u128` table, zeroed, for reuse.
    pub(crate) fn into_table(self) -> Option<Box<[u128; 128]>> {
        let mut t = self.small?;
        t.fill(0);
        Some(t)
    }

    #[inline(always)]
    fn mask(&self, c: char) -> Option<&[u64]> {
        let code = c as u32;
        if code < 128 {
            let w = self.words;
            Some(&self.ascii[code as usize * w..(code as usize + 1) * w])
        } else {
            self.other.get(&c).map(Vec::as_slice)
        }
    }

    /// [`PatternMasks::lcs`] of a text given as characters and, when it is ASCII, as bytes
    /// (the byte kernels of patterns up to 256 characters read those).
    pub(crate) fn lcs_text(
        &self,
        chars: &[char],
        ascii: Option<&[u8]>,
        scratch: &mut Vec<u64>,
        need: usize,
    ) -> usize {
        match (ascii, &self.small, &self.medium) {
            (Some(b), Some(t), _) => lcs_ascii_128(t, self.len, b, need),
            (Some(b), None, Some(t)) => lcs_ascii_256(t, self.len, b, need),
            _ => self.lcs(chars, scratch, need),
        }
    }

    /// The LCS length of the pattern and `b`, or, when it cannot reach `need`, some value below
    /// `need` (the scan stops early once the rest of `b` cannot make up the difference).
    pub(crate) fn lcs(&self, b: &[char], s: &mut Vec<u64>, need: usize) -> usize {
        let lb = b.len();
        if let Some(t) = &self.small {
            let mut v = u128::MAX;
            for (k, c) in b.iter().enumerate() {
                if k % 8 == 0 && k > 0 {
                    let have = matched_128(v);
                    if have + (lb - k) < need {
                        return have + (lb - k);
                    }
                }
                let code = *c as u32;
                let m = if code < 128 {
                    t[(code & 127) as usize]
                } else {
                    self.small_other.get(c).copied().unwrap_or(0)
                };
                v = lcs_step(v, m);
            }
            return matched_128(v);
        }
        if let Some(t) = &self.medium {
            let mut v = [u128::MAX; 2];
            for (k, c) in b.iter().enumerate() {
                if k % 8 == 0 && k > 0 {
                    let have = matched_256(v);
                    if have + (lb - k) < need {
                        return have + (lb - k);
                    }
                }
                let code = *c as u32;
                let m = if code < 128 {
                    t[(code & 127) as usize]
                } else {
                    self.medium_other.get(c).copied().unwrap_or([0, 0])
                };
                lcs_step_256(&mut v, m);
            }
            return matched_256(v);
        }
        let words = self.words;
        s.clear();
        s.resize(words, u64::MAX);
        for (k, c) in b.iter().enumerate() {
            if k % 8 == 0 && k > 0 {
                let have: usize = s.iter().map(|w| (!w).count_ones() as usize).sum();
                if have + (lb - k) < need {
                    return have + (lb - k);
                }
            }
            let Some(m) = self.mask(*c) else { continue };
            let mut carry = 0u64;
            for w in 0..words {
                let sw = s[w];
                let u = sw & m[w];
                let (sum, c1) = sw.overflowing_add(u);
                let (sum, c2) = sum.overflowing_add(carry);
                carry = u64::from(c1 | c2);
                s[w] = sum | (sw - u);
            }
        }
        s.iter().map(|w| (!w).count_ones() as usize).sum()
    }
}

/// [`PatternMasks::lcs`] for a pattern of 129 to 256 characters and an ASCII text.
fn lcs_ascii_256(t: &[[u128; 2]; 128], la: usize, b: &[u8], need: usize) -> usize {
    let lb = b.len();
    let mut v = [u128::MAX; 2];
    let mut k = 0;
    for chunk in b.chunks(8) {
        if k > 0 {
            // As in `lcs_ascii_128`: the best split at column `k`.
            let rest = lb - k;
            let bound = split_bound_256(&v, la, rest);
            if bound < need {
                return bound;
            }
        }
        for &c in chunk {
            lcs_step_256(&mut v, t[usize::from(c & 127)]);
        }
        k += chunk.len();
    }
    matched_256(v)
}

/// [`PatternMasks::lcs`] for a pattern of up to 128 characters and an ASCII text.
fn lcs_ascii_128(t: &[u128; 128], la: usize, b: &[u8], need: usize) -> usize {
    lcs_ascii_128_from(t, la, b, need, u128::MAX, 0)
}

/// An upper bound on the LCS of a pattern of `la` characters and a text once `v` holds the
/// [`lcs_ascii_128`] resumed at text position `k0` (a multiple of 8) with the vector `v`.
fn lcs_ascii_128_from(
    t: &[u128; 128],
    la: usize,
    b: &[u8],
    need: usize,
    mut v: u128,
    k0: usize,
) -> usize {
    let lb = b.len();
    let mut k = k0;
    for chunk in b[k0..].chunks(8) {
        if k > 0 {
            let bound = split_bound_128(v, la, lb - k);
            if bound < need {
                return bound;
            }
        }
        for &c in chunk {
            v = lcs_step(v, t[usize::from(c & 127)]);
        }
        k += chunk.len();
    }
    matched_128(v)
}
