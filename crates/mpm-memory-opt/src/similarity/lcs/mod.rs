//! The longest common subsequence (LCS) of two strings, bit-parallel.
//!
//! Every kernel here runs the recurrence of Hyyrö, "Bit-parallel LCS-length computation
//! revisited" (AWOCA 2004), a simplification of Crochemore, Iliopoulos, Pinzon and Reid (2001),
//! itself in the line of Allison and Dix (1986): with `M[c]` the positions of character `c` in
//! the pattern, a vector `V` (all ones at first) steps over each text character `c` as
//! `U = V & M[c]; V = (V + U) | (V - U)`, and the LCS is the number of zeros of `V` among the
//! pattern's positions. [`lcs_step`] and [`lcs_step_256`] are that step on 128 and 256 bits.
//!
//! The kernels stop early, every 8 text characters, once the best split at the current column
//! ([`split_bound_128`]) cannot reach the match count the caller needs.
//!
//! - [`pattern`]: any pattern ([`PatternMasks`]), any characters; the general path.
//! - [`row`]: an ASCII pattern of up to 256 characters against many texts ([`RowTable`]).
//! - [`lanes`]: four ASCII patterns of up to 128 characters at once in AVX2 lanes
//!   ([`LaneTable`]).

pub(crate) mod lanes;
pub(crate) mod pattern;
pub(crate) mod row;

pub(crate) use lanes::{LaneTable, lanes_available};
pub(crate) use pattern::PatternMasks;
pub(crate) use row::RowTable;

/// One step of the bit-parallel LCS on a 256-bit vector.
#[inline(always)]
pub(crate) fn lcs_step_256(v: &mut [u128; 2], m: [u128; 2]) {
    let (u0, u1) = (v[0] & m[0], v[1] & m[1]);
    let (s0, carry) = v[0].overflowing_add(u0);
    let s1 = v[1].wrapping_add(u1).wrapping_add(u128::from(carry));
    v[0] = s0 | (v[0] - u0);
    v[1] = s1 | (v[1] - u1);
}

#[inline(always)]
pub(crate) fn matched_256(v: [u128; 2]) -> usize {
    ((!v[0]).count_ones() + (!v[1]).count_ones()) as usize
}

/// The lowest `i` bits set (`i <= 128`).
#[inline(always)]
pub(crate) fn low_bits(i: usize) -> u128 {
    if i >= 128 {
        u128::MAX
    } else {
        (1u128 << i) - 1
    }
}
/// first `lb - rest` text characters.
///
/// The LCS splits at that column: `lcs(a[..i], b[..k]) + min(la - i, rest)` at best, largest at
/// `i = la - rest` (the zeros of `v` below bit `i` count the first term).
#[inline(always)]
pub(crate) fn split_bound_128(v: u128, la: usize, rest: usize) -> usize {
    if la > rest {
        (!v & low_bits(la - rest)).count_ones() as usize + rest
    } else {
        la
    }
}

/// [`split_bound_128`] for a pattern of up to 256 characters held in two words.
#[inline(always)]
pub(crate) fn split_bound_256(v: &[u128; 2], la: usize, rest: usize) -> usize {
    if la > rest {
        let i = la - rest;
        let z = if i <= 128 {
            (!v[0] & low_bits(i)).count_ones()
        } else {
            (!v[0]).count_ones() + (!v[1] & low_bits(i - 128)).count_ones()
        };
        z as usize + rest
    } else {
        la
    }
}

/// One step of the bit-parallel LCS on a 128-bit vector.
#[inline(always)]
pub(crate) fn lcs_step(v: u128, m: u128) -> u128 {
    let u = v & m;
    v.wrapping_add(u) | (v - u)
}

/// The LCS so far of a 128-bit vector: its zeros.
#[inline(always)]
pub(crate) fn matched_128(v: u128) -> usize {
    (!v).count_ones() as usize
}

/// Length of the longest common subsequence of `a` and `b` (bit-parallel).
pub(crate) fn lcs_len(a: &[char], b: &[char]) -> usize {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let (p, t) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    PatternMasks::new(p).lcs(t, &mut Vec::new(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn lcs_is_right_across_words() {
        let a: String = (0..150).map(|i| (b'a' + (i % 7) as u8) as char).collect();
        let b: String = (0..140).map(|i| (b'a' + (i % 5) as u8) as char).collect();
        let naive = {
            let (a, b) = (chars(&a), chars(&b));
            let mut dp = vec![vec![0usize; b.len() + 1]; a.len() + 1];
            for i in 0..a.len() {
                for j in 0..b.len() {
                    dp[i + 1][j + 1] = if a[i] == b[j] {
                        dp[i][j] + 1
                    } else {
                        dp[i][j + 1].max(dp[i + 1][j])
                    };
                }
            }
            dp[a.len()][b.len()]
        };
        assert_eq!(lcs_len(&chars(&a), &chars(&b)), naive);
        assert_eq!(lcs_len(&chars("héllo wörld"), &chars("hello world")), 9);
    }

    /// Deterministic pseudo-random ASCII strings over a small alphabet (many matches).
    fn strings(seed: u64, count: usize, max_len: usize) -> Vec<String> {
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..count)
            .map(|_| {
                let len = 1 + (next() as usize) % max_len;
                (0..len)
                    .map(|_| b"abcde /z"[(next() % 8) as usize] as char)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn row_kernels_give_the_lcs_or_a_value_below_need() {
        let pats = strings(7, 40, 128);
        let texts = strings(11, 60, 300);
        let mut t4 = LaneTable::new();
        let mut row = RowTable::new();
        for quad in pats.chunks_exact(4) {
            for (l, p) in quad.iter().enumerate() {
                t4.set(l, p.as_bytes());
            }
            for pair in texts.chunks_exact(2) {
                let exact: Vec<[usize; 4]> = pair
                    .iter()
                    .map(|b| std::array::from_fn(|l| lcs_len(&chars(&quad[l]), &chars(b))))
                    .collect();
                // Needs around the true value: at, just above and well below it.
                for shift in [0isize, 1, -5, 40] {
                    let need = |k: usize| -> [usize; 4] {
                        std::array::from_fn(|l| (exact[k][l] as isize + shift).max(0) as usize)
                    };
                    let live = [true, true, shift != -5, true];
                    for (k, b) in pair.iter().enumerate() {
                        for (l, p) in quad.iter().enumerate() {
                            row.set(l as u64 + 1000 * k as u64, p.as_bytes());
                            let got = row.lcs(b.as_bytes(), need(k)[l]);
                            check_lcs(got, exact[k][l], need(k)[l]);
                        }
                    }
                    if lanes_available() {
                        let got = t4.lcs([
                            (pair[0].as_bytes(), need(0), live),
                            (pair[1].as_bytes(), need(1), live),
                        ]);
                        for k in 0..2 {
                            for l in 0..4 {
                                if live[l] {
                                    check_lcs(got[k][l], exact[k][l], need(k)[l]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[track_caller]
    fn check_lcs(got: usize, exact: usize, need: usize) {
        if exact >= need {
            assert_eq!(got, exact);
        } else {
            assert!(got < need, "{got} for an LCS of {exact} below {need}");
        }
    }
}
