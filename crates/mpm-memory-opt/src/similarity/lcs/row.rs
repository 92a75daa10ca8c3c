//! One ASCII pattern of up to 256 characters against many texts: [`RowTable`].

use super::{lcs_step, lcs_step_256, matched_128, matched_256, split_bound_128, split_bound_256};

/// A pattern of up to 256 ASCII characters as bit masks for the row kernels: one array of
/// words per 64 positions, indexed by the text's byte, so the loop needs no masking and no
/// bounds check.
pub(crate) struct RowTable {
    /// The [`crate::optimize::scorer::Prepared`] id of the pattern.
    pub(crate) id: u64,
    /// The pattern, to clear its bits when the table is reused.
    pattern: Vec<u8>,
    words: [[u64; 256]; 4],
}

impl RowTable {
    pub(crate) fn new() -> Box<RowTable> {
        Box::new(RowTable {
            id: u64::MAX,
            pattern: Vec::new(),
            words: [[0; 256]; 4],
        })
    }

    /// Makes this the table of `pattern` (ASCII, at most 256 bytes).
    pub(crate) fn set(&mut self, id: u64, pattern: &[u8]) {
        for (i, &c) in self.pattern.iter().enumerate() {
            self.words[i / 64][usize::from(c)] = 0;
        }
        for (i, &c) in pattern.iter().enumerate() {
            self.words[i / 64][usize::from(c)] |= 1 << (i % 64);
        }
        self.pattern.clear();
        self.pattern.extend_from_slice(pattern);
        self.id = id;
    }

    #[inline(always)]
    fn mask_128(&self, c: u8) -> u128 {
        u128::from(self.words[1][usize::from(c)]) << 64 | u128::from(self.words[0][usize::from(c)])
    }

    #[inline(always)]
    fn mask_256(&self, c: u8) -> [u128; 2] {
        let c = usize::from(c);
        [
            u128::from(self.words[1][c]) << 64 | u128::from(self.words[0][c]),
            u128::from(self.words[3][c]) << 64 | u128::from(self.words[2][c]),
        ]
    }

    /// The LCS of the pattern and the ASCII text `b` if it is at least `need`, else some value
    /// below `need` (as [`super::PatternMasks::lcs`]).
    pub(crate) fn lcs(&self, b: &[u8], need: usize) -> usize {
        let la = self.pattern.len();
        if la <= 128 {
            return self.lcs_128_from(b, need, u128::MAX, 0);
        }
        let lb = b.len();
        let mut v = [u128::MAX; 2];
        let mut k = 0;
        for chunk in b.chunks(8) {
            if k > 0 && lb - k < need {
                let rest = lb - k;
                let bound = split_bound_256(&v, la, rest);
                if bound < need {
                    return bound;
                }
            }
            for &c in chunk {
                lcs_step_256(&mut v, self.mask_256(c));
            }
            k += chunk.len();
        }
        matched_256(v)
    }

    /// [`RowTable::lcs`] for a pattern of at most 128 characters, resumed at text position
    /// `k0` (a multiple of 8) with the vector `v`.
    fn lcs_128_from(&self, b: &[u8], need: usize, mut v: u128, k0: usize) -> usize {
        let (la, lb) = (self.pattern.len(), b.len());
        let mut k = k0;
        for chunk in b[k0..].chunks(8) {
            // The bound is never below `rest`: no need to count before `rest < need`.
            if k > 0 && lb - k < need {
                let bound = split_bound_128(v, la, lb - k);
                if bound < need {
                    return bound;
                }
            }
            for &c in chunk {
                v = lcs_step(v, self.mask_128(c));
            }
            k += chunk.len();
        }
        matched_128(v)
    }

    /// [`RowTable::lcs`] against two texts, interleaved so that the two dependency chains run
    /// side by side; each result is the one [`RowTable::lcs`] gives.
    pub(crate) fn lcs_pair(
        &self,
        (b1, need1): (&[u8], usize),
        (b2, need2): (&[u8], usize),
    ) -> (usize, usize) {
        let la = self.pattern.len();
        if la > 128 {
            return (self.lcs(b1, need1), self.lcs(b2, need2));
        }
        let common = b1.len().min(b2.len()) / 8 * 8;
        let (mut v1, mut v2) = (u128::MAX, u128::MAX);
        let mut k = 0;
        while k < common {
            if k > 0
                && ((b1.len() - k < need1 && split_bound_128(v1, la, b1.len() - k) < need1)
                    || (b2.len() - k < need2 && split_bound_128(v2, la, b2.len() - k) < need2))
            {
                break;
            }
            for (&c1, &c2) in b1[k..k + 8].iter().zip(&b2[k..k + 8]) {
                v1 = lcs_step(v1, self.mask_128(c1));
                v2 = lcs_step(v2, self.mask_128(c2));
            }
            k += 8;
        }
        (
            self.lcs_128_from(b1, need1, v1, k),
            self.lcs_128_from(b2, need2, v2, k),
        )
    }
}
