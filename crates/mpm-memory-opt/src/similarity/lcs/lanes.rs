//! Four ASCII patterns of up to 128 characters side by side in the lanes of AVX2 vectors:
//! [`LaneTable`].

/// Four patterns of up to 128 ASCII characters side by side, one lane each, indexed by the
/// text's byte: one text is compared with the four at once (the optimizer's pair scorer, four
/// rows at a time). The lane operations are plain loops over four words, which the compiler turns into vector
/// instructions.
pub(crate) struct LaneTable {
    patterns: [Vec<u8>; 4],
    lo: [[u64; 4]; 256],
    hi: [[u64; 4]; 256],
}

impl LaneTable {
    pub(crate) fn new() -> Box<LaneTable> {
        Box::new(LaneTable {
            patterns: Default::default(),
            lo: [[0; 4]; 256],
            hi: [[0; 4]; 256],
        })
    }

    /// Makes lane `l` the table of `pattern` (ASCII, at most 128 bytes).
    pub(crate) fn set(&mut self, l: usize, pattern: &[u8]) {
        for &c in &self.patterns[l] {
            self.lo[usize::from(c)][l] = 0;
            self.hi[usize::from(c)][l] = 0;
        }
        for (i, &c) in pattern.iter().enumerate() {
            if i < 64 {
                self.lo[usize::from(c)][l] |= 1 << i;
            } else {
                self.hi[usize::from(c)][l] |= 1 << (i - 64);
            }
        }
        self.patterns[l].clear();
        self.patterns[l].extend_from_slice(pattern);
    }

    /// The LCS of each lane's pattern and each of two ASCII texts `(b, need, live)`: exact
    /// when it is at least `need[l]`, else some value below `need[l]` (the lane stops counting
    /// once it cannot reach it, as [`super::RowTable::lcs`]). Lanes with `live[l] == false` are not
    /// wanted (0). Only called when [`lanes_available`].
    pub(crate) fn lcs(&self, texts: [(&[u8], [usize; 4], [bool; 4]); 2]) -> [[usize; 4]; 2] {
        let la: [usize; 4] = std::array::from_fn(|l| self.patterns[l].len());
        avx2::lcs_four_lanes(&self.lo, &self.hi, la, texts)
    }
}

/// `true` if [`LaneTable`] can run here: on x86-64 with AVX2 and POPCNT (checked once, then
/// cached by the standard library).
pub(crate) fn lanes_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The four-lane LCS of [`LaneTable`] in AVX2 instructions.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi64, _mm256_and_si256, _mm256_andnot_si256, _mm256_extract_epi64,
        _mm256_or_si256, _mm256_set_epi64x, _mm256_set1_epi64x, _mm256_srli_epi64,
        _mm256_xor_si256,
    };

    use crate::similarity::lcs::split_bound_128;

    /// [`super::LaneTable::lcs`] of two texts; the caller has checked
    /// [`super::lanes_available`].
    #[allow(unsafe_code)]
    pub(super) fn lcs_four_lanes(
        lo: &[[u64; 4]; 256],
        hi: &[[u64; 4]; 256],
        la: [usize; 4],
        texts: [(&[u8], [usize; 4], [bool; 4]); 2],
    ) -> [[usize; 4]; 2] {
        assert!(super::lanes_available(), "AVX2 and POPCNT are required");
        // SAFETY: `lcs_four_lanes_avx2` is safe code compiled for AVX2 and POPCNT; calling it needs only
        // that the CPU has both, which the assertion above has checked.
        unsafe { lcs_four_lanes_avx2(lo, hi, la, texts) }
    }

    /// The four words of a vector (a macro: the intrinsics need the caller's target features).
    macro_rules! words {
        ($x:expr) => {{
            let x: __m256i = $x;
            [
                _mm256_extract_epi64::<0>(x) as u64,
                _mm256_extract_epi64::<1>(x) as u64,
                _mm256_extract_epi64::<2>(x) as u64,
                _mm256_extract_epi64::<3>(x) as u64,
            ]
        }};
    }

    /// One text's state in [`lcs_four_lanes_avx2`]: lane `l` holds bits 0..64 of its 128-bit vector in
    /// `vl`, bits 64..128 in `vh`.
    #[derive(Clone, Copy)]
    struct Text<'b> {
        b: &'b [u8],
        need: [usize; 4],
        live: [bool; 4],
        out: [usize; 4],
        vl: __m256i,
        vh: __m256i,
    }

    /// The early-exit check at column `$k` (as [`crate::similarity::lcs::RowTable::lcs`]): lanes that cannot
    /// reach their `need` stop. Evaluates to `true` when no lane is left.
    macro_rules! check {
        ($t:expr, $la:expr, $k:expr) => {{
            let t = &mut $t;
            let rest = t.b.len() - $k;
            if (0..4).any(|l| t.live[l] && rest < t.need[l]) {
                let (wl, wh) = (words!(t.vl), words!(t.vh));
                for l in 0..4 {
                    if t.live[l] && rest < t.need[l] {
                        let v = u128::from(wh[l]) << 64 | u128::from(wl[l]);
                        let bound = split_bound_128(v, $la[l], rest);
                        if bound < t.need[l] {
                            t.live[l] = false;
                            t.out[l] = bound;
                        }
                    }
                }
            }
            t.live == [false; 4]
        }};
    }

    /// One step of the four lanes with text byte `$c`, on 128 bits in two words: `u` is a
    /// subset of `v`, so the carry out of the low word is the top bit of `u | (v & !sum)`, and
    /// `v - u` is `v ^ u`.
    macro_rules! step {
        ($t:expr, $lo:expr, $hi:expr, $c:expr) => {{
            let c = usize::from($c);
            let t = &mut $t;
            let (x, y) = (&$lo[c], &$hi[c]);
            let ml = _mm256_set_epi64x(x[3] as i64, x[2] as i64, x[1] as i64, x[0] as i64);
            let mh = _mm256_set_epi64x(y[3] as i64, y[2] as i64, y[1] as i64, y[0] as i64);
            let ul = _mm256_and_si256(t.vl, ml);
            let uh = _mm256_and_si256(t.vh, mh);
            let sl = _mm256_add_epi64(t.vl, ul);
            let carry = _mm256_srli_epi64::<63>(_mm256_or_si256(ul, _mm256_andnot_si256(sl, t.vl)));
            let sh = _mm256_add_epi64(_mm256_add_epi64(t.vh, uh), carry);
            t.vl = _mm256_or_si256(sl, _mm256_xor_si256(t.vl, ul));
            t.vh = _mm256_or_si256(sh, _mm256_xor_si256(t.vh, uh));
        }};
    }

    /// Runs `t` from column `k0` (a multiple of 8) to its end or until no lane is left.
    #[target_feature(enable = "avx2,popcnt")]
    fn finish(
        lo: &[[u64; 4]; 256],
        hi: &[[u64; 4]; 256],
        la: [usize; 4],
        mut t: Text<'_>,
        k0: usize,
    ) -> [usize; 4] {
        let mut k = k0;
        for chunk in t.b[k0..].chunks(8) {
            if k > 0 && check!(t, la, k) {
                return t.out;
            }
            for &c in chunk {
                step!(t, lo, hi, c);
            }
            k += chunk.len();
        }
        let (wl, wh) = (words!(t.vl), words!(t.vh));
        for l in 0..4 {
            if t.live[l] {
                t.out[l] = ((!wl[l]).count_ones() + (!wh[l]).count_ones()) as usize;
            }
        }
        t.out
    }

    /// The 8 bytes of `b` from `k` (the caller knows `k + 8 <= b.len()`).
    #[inline(always)]
    fn eight(b: &[u8], k: usize) -> [u8; 8] {
        let mut out = [0; 8];
        out.copy_from_slice(&b[k..k + 8]);
        out
    }

    /// Two texts against the four patterns, side by side while both last (two independent
    /// dependency chains), then each to its end.
    #[target_feature(enable = "avx2,popcnt")]
    fn lcs_four_lanes_avx2(
        lo: &[[u64; 4]; 256],
        hi: &[[u64; 4]; 256],
        la: [usize; 4],
        texts: [(&[u8], [usize; 4], [bool; 4]); 2],
    ) -> [[usize; 4]; 2] {
        let ones = _mm256_set1_epi64x(-1);
        let [mut t1, mut t2] = texts.map(|(b, need, live)| Text {
            b,
            need,
            live,
            out: [0; 4],
            vl: ones,
            vh: ones,
        });
        let common = t1.b.len().min(t2.b.len()) / 8 * 8;
        let mut k = 0;
        while k < common {
            if k > 0 {
                if check!(t1, la, k) {
                    return [t1.out, finish(lo, hi, la, t2, k)];
                }
                if check!(t2, la, k) {
                    return [finish(lo, hi, la, t1, k), t2.out];
                }
            }
            // Eight columns as arrays: the loop unrolls without bounds checks.
            let (c1, c2) = (eight(t1.b, k), eight(t2.b, k));
            for i in 0..8 {
                step!(t1, lo, hi, c1[i]);
                step!(t2, lo, hi, c2[i]);
            }
            k += 8;
        }
        [finish(lo, hi, la, t1, k), finish(lo, hi, la, t2, k)]
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    /// Never called: [`super::lanes_available`] is `false` here.
    pub(super) fn lcs_four_lanes(
        _: &[[u64; 4]; 256],
        _: &[[u64; 4]; 256],
        _: [usize; 4],
        _: [(&[u8], [usize; 4], [bool; 4]); 2],
    ) -> [[usize; 4]; 2] {
        unreachable!("four-lane LCS without AVX2")
    }
}
