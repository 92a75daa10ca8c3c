//! Similarity of two entries: Python's `difflib` ratio, a fast indel ratio, and the upper bounds
//! that let the optimizer skip pairs that cannot reach a threshold.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A similarity metric between two strings, in `0.0..=1.0` (1.0 for equal strings).
///
/// Implement it to plug your own metric into [`crate::Options::metric`]. The optimizer prunes
/// candidate pairs with character-count bounds only when [`Similarity::bounded_by_lcs`] says it
/// is safe; a custom metric is compared on every pair otherwise.
pub trait Similarity: Send + Sync + std::fmt::Debug {
    /// A short name for reports (`"difflib"`, `"indel"`).
    fn name(&self) -> &str;
    /// The similarity of `a` and `b`.
    fn ratio(&self, a: &str, b: &str) -> f64;
    /// `true` if `ratio(a, b) <= 2 * m / (len(a) + len(b))` (lengths in `char`s) whenever `a` and `b`
    /// have a common subsequence of at most `m` characters. Both built-in metrics satisfy this.
    fn bounded_by_lcs(&self) -> bool {
        false
    }
    /// Which built-in metric this is, so the optimizer can use its prepared fast path.
    #[doc(hidden)]
    fn builtin(&self) -> Option<Builtin> {
        None
    }
}

macro_rules! forward_similarity {
    ($($t:ty),*) => {$(
        impl<S: Similarity + ?Sized> Similarity for $t {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn ratio(&self, a: &str, b: &str) -> f64 {
                (**self).ratio(a, b)
            }
            fn bounded_by_lcs(&self) -> bool {
                (**self).bounded_by_lcs()
            }
            fn builtin(&self) -> Option<Builtin> {
                (**self).builtin()
            }
        }
    )*};
}

forward_similarity!(&S, Box<S>, std::sync::Arc<S>);

/// The built-in metrics.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// [`Difflib`].
    Difflib,
    /// [`Indel`].
    Indel,
}

/// Python's `difflib.SequenceMatcher(None, a, b).ratio()`, autojunk on, bit for bit.
///
/// Ratcliff/Obershelp: the longest matching block, recursively on both sides, then
/// `2 * matched / (len(a) + len(b))` over `char`s (Python's code points). When `b` has 200
/// characters or more, characters occurring more than `len(b) / 100 + 1` times in `b` are not used
/// as anchors (Python's "popular" elements), exactly as Python does.
///
/// ```
/// use mpm_memory_opt::{Difflib, Similarity};
/// let r = Difflib.ratio(
///     "use async/await for all database operations",
///     "use async/await for all database operations and queries",
/// );
/// assert!((r - 0.8776).abs() < 1e-4);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Difflib;

/// The indel ratio: `2 * LCS / (len(a) + len(b))`, what rapidfuzz's `fuzz.ratio` computes (over
/// 100), with a bit-parallel LCS (Hyyrö), so about `len(a) / 64 * len(b)` word operations.
///
/// It is never below [`Difflib`]'s ratio for the same pair.
#[derive(Debug, Clone, Copy, Default)]
pub struct Indel;

impl Similarity for Difflib {
    fn name(&self) -> &str {
        "difflib"
    }
    fn ratio(&self, a: &str, b: &str) -> f64 {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        difflib_ratio_chars(&a, &b)
    }
    fn bounded_by_lcs(&self) -> bool {
        true
    }
    fn builtin(&self) -> Option<Builtin> {
        Some(Builtin::Difflib)
    }
}

impl Similarity for Indel {
    fn name(&self) -> &str {
        "indel"
    }
    fn ratio(&self, a: &str, b: &str) -> f64 {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        ratio_of(lcs_len(&a, &b), a.len() + b.len())
    }
    fn bounded_by_lcs(&self) -> bool {
        true
    }
    fn builtin(&self) -> Option<Builtin> {
        Some(Builtin::Indel)
    }
}

/// `2 * matches / total`, as Python's `difflib._calculate_ratio` computes it (1.0 when empty).
#[inline]
pub(crate) fn ratio_of(matches: usize, total: usize) -> f64 {
    if total == 0 {
        1.0
    } else {
        2.0 * matches as f64 / total as f64
    }
}

#[derive(Default)]
pub(crate) struct CharHasher(u64);

impl Hasher for CharHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 =
                (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(29) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type CharMap<V> = HashMap<char, V, BuildHasherDefault<CharHasher>>;

/// `b2j` of Python's `SequenceMatcher`: the positions of each character of `b`, popular ones
/// removed.
pub(crate) struct B2j {
    map: CharMap<Vec<u32>>,
}

impl B2j {
    pub(crate) fn new(b: &[char]) -> B2j {
        let mut map: CharMap<Vec<u32>> = CharMap::default();
        for (j, c) in b.iter().enumerate() {
            map.entry(*c).or_default().push(j as u32);
        }
        let n = b.len();
        if n >= 200 {
            let ntest = n / 100 + 1;
            map.retain(|_, idx| idx.len() <= ntest);
        }
        B2j { map }
    }
}

/// Python's difflib ratio over `char` slices.
pub fn difflib_ratio_chars(a: &[char], b: &[char]) -> f64 {
    let b2j = B2j::new(b);
    ratio_of(difflib_matches(a, b, &b2j), a.len() + b.len())
}

/// The number of matched characters of Python's `get_matching_blocks`.
pub(crate) fn difflib_matches(a: &[char], b: &[char], b2j: &B2j) -> usize {
    let mut prev = vec![0u32; b.len()];
    let mut cur = vec![0u32; b.len()];
    let mut tp: Vec<usize> = Vec::new();
    let mut tc: Vec<usize> = Vec::new();
    let mut queue = vec![(0usize, a.len(), 0usize, b.len())];
    let mut matched = 0usize;
    while let Some((alo, ahi, blo, bhi)) = queue.pop() {
        // find_longest_match(alo, ahi, blo, bhi)
        let (mut besti, mut bestj, mut bestsize) = (alo, blo, 0usize);
        for (i, ch) in a.iter().enumerate().take(ahi).skip(alo) {
            if let Some(js) = b2j.map.get(ch) {
                for &j in js {
                    let j = j as usize;
                    if j < blo {
                        continue;
                    }
                    if j >= bhi {
                        break;
                    }
                    let k = if j > 0 { prev[j - 1] } else { 0 } + 1;
                    cur[j] = k;
                    tc.push(j);
                    let k = k as usize;
                    if k > bestsize {
                        besti = i + 1 - k;
                        bestj = j + 1 - k;
                        bestsize = k;
                    }
                }
            }
            for &j in &tp {
                prev[j] = 0;
            }
            tp.clear();
            std::mem::swap(&mut prev, &mut cur);
            std::mem::swap(&mut tp, &mut tc);
        }
        for &j in &tp {
            prev[j] = 0;
        }
        tp.clear();
        // No junk (isjunk is None), so Python extends over popular characters too.
        while besti > alo && bestj > blo && a[besti - 1] == b[bestj - 1] {
            besti -= 1;
            bestj -= 1;
            bestsize += 1;
        }
        while besti + bestsize < ahi
            && bestj + bestsize < bhi
            && a[besti + bestsize] == b[bestj + bestsize]
        {
            bestsize += 1;
        }
        if bestsize > 0 {
            matched += bestsize;
            if alo < besti && blo < bestj {
                queue.push((alo, besti, blo, bestj));
            }
            if besti + bestsize < ahi && bestj + bestsize < bhi {
                queue.push((besti + bestsize, ahi, bestj + bestsize, bhi));
            }
        }
    }
    matched
}

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
    fn with_table(a: &[char], table: Option<Box<[u128; 128]>>) -> PatternMasks {
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
    fn into_table(self) -> Option<Box<[u128; 128]>> {
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

    /// The LCS length of the pattern and `b`, or, when it cannot reach `need`, some value below
    /// `need` (the scan stops early once the rest of `b` cannot make up the difference).
    pub(crate) fn lcs(&self, b: &[char], s: &mut Vec<u64>, need: usize) -> usize {
        let lb = b.len();
        if let Some(t) = &self.small {
            let mut v = u128::MAX;
            for (k, c) in b.iter().enumerate() {
                if k % 8 == 0 && k > 0 {
                    let have = (!v).count_ones() as usize;
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
                let u = v & m;
                v = v.wrapping_add(u) | (v - u);
            }
            return (!v).count_ones() as usize;
        }
        if let Some(t) = &self.medium {
            let mut v = [u128::MAX; 2];
            for (k, c) in b.iter().enumerate() {
                if k % 8 == 0 && k > 0 {
                    let have = count_zeros2(v);
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
                step2(&mut v, m);
            }
            return count_zeros2(v);
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

/// One step of the bit-parallel LCS on a 256-bit vector.
#[inline(always)]
fn step2(v: &mut [u128; 2], m: [u128; 2]) {
    let (u0, u1) = (v[0] & m[0], v[1] & m[1]);
    let (s0, carry) = v[0].overflowing_add(u0);
    let s1 = v[1].wrapping_add(u1).wrapping_add(u128::from(carry));
    v[0] = s0 | (v[0] - u0);
    v[1] = s1 | (v[1] - u1);
}

#[inline(always)]
fn count_zeros2(v: [u128; 2]) -> usize {
    ((!v[0]).count_ones() + (!v[1]).count_ones()) as usize
}

/// [`PatternMasks::lcs`] for a pattern of 129 to 256 characters and an ASCII text.
fn lcs_ascii2(t: &[[u128; 2]; 128], la: usize, b: &[u8], need: usize) -> usize {
    let lb = b.len();
    let mut v = [u128::MAX; 2];
    let mut k = 0;
    for chunk in b.chunks(8) {
        if k > 0 {
            // As in `lcs_ascii`: the best split at column `k`.
            let rest = lb - k;
            let bound = split_bound2(&v, la, rest);
            if bound < need {
                return bound;
            }
        }
        for &c in chunk {
            step2(&mut v, t[usize::from(c & 127)]);
        }
        k += chunk.len();
    }
    count_zeros2(v)
}

/// The lowest `i` bits set (`i <= 128`).
#[inline(always)]
fn low_bits(i: usize) -> u128 {
    if i >= 128 {
        u128::MAX
    } else {
        (1u128 << i) - 1
    }
}

/// [`PatternMasks::lcs`] for a pattern of up to 128 characters and an ASCII text.
fn lcs_ascii(t: &[u128; 128], la: usize, b: &[u8], need: usize) -> usize {
    lcs_ascii_from(t, la, b, need, u128::MAX, 0)
}

/// An upper bound on the LCS of a pattern of `la` characters and a text once `v` holds the
/// first `lb - rest` text characters.
///
/// The LCS splits at that column: `lcs(a[..i], b[..k]) + min(la - i, rest)` at best, largest at
/// `i = la - rest` (the zeros of `v` below bit `i` count the first term).
#[inline(always)]
fn split_bound(v: u128, la: usize, rest: usize) -> usize {
    if la > rest {
        (!v & low_bits(la - rest)).count_ones() as usize + rest
    } else {
        la
    }
}

/// [`split_bound`] for a pattern of up to 256 characters held in two words.
#[inline(always)]
fn split_bound2(v: &[u128; 2], la: usize, rest: usize) -> usize {
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
fn step1(v: u128, m: u128) -> u128 {
    let u = v & m;
    v.wrapping_add(u) | (v - u)
}

/// [`lcs_ascii`] resumed at text position `k0` (a multiple of 8) with the vector `v`.
fn lcs_ascii_from(
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
            let bound = split_bound(v, la, lb - k);
            if bound < need {
                return bound;
            }
        }
        for &c in chunk {
            v = step1(v, t[usize::from(c & 127)]);
        }
        k += chunk.len();
    }
    (!v).count_ones() as usize
}

/// A pattern of up to 256 ASCII characters as bit masks for the row kernels: one array of
/// words per 64 positions, indexed by the text's byte, so the loop needs no masking and no
/// bounds check.
pub(crate) struct RowTable {
    /// The [`Prepared::id`] of the pattern.
    id: u64,
    /// The pattern, to clear its bits when the table is reused.
    pattern: Vec<u8>,
    words: [[u64; 256]; 4],
}

impl RowTable {
    fn new() -> Box<RowTable> {
        Box::new(RowTable {
            id: u64::MAX,
            pattern: Vec::new(),
            words: [[0; 256]; 4],
        })
    }

    /// Makes this the table of `pattern` (ASCII, at most 256 bytes).
    fn set(&mut self, id: u64, pattern: &[u8]) {
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
    fn m128(&self, c: u8) -> u128 {
        u128::from(self.words[1][usize::from(c)]) << 64 | u128::from(self.words[0][usize::from(c)])
    }

    #[inline(always)]
    fn m256(&self, c: u8) -> [u128; 2] {
        let c = usize::from(c);
        [
            u128::from(self.words[1][c]) << 64 | u128::from(self.words[0][c]),
            u128::from(self.words[3][c]) << 64 | u128::from(self.words[2][c]),
        ]
    }

    /// The LCS of the pattern and the ASCII text `b` if it is at least `need`, else some value
    /// below `need` (as [`lcs_ascii`]).
    fn lcs(&self, b: &[u8], need: usize) -> usize {
        let la = self.pattern.len();
        if la <= 128 {
            return self.lcs128_from(b, need, u128::MAX, 0);
        }
        let lb = b.len();
        let mut v = [u128::MAX; 2];
        let mut k = 0;
        for chunk in b.chunks(8) {
            if k > 0 && lb - k < need {
                let rest = lb - k;
                let bound = split_bound2(&v, la, rest);
                if bound < need {
                    return bound;
                }
            }
            for &c in chunk {
                step2(&mut v, self.m256(c));
            }
            k += chunk.len();
        }
        count_zeros2(v)
    }

    /// [`RowTable::lcs`] for a pattern of at most 128 characters, resumed at text position
    /// `k0` (a multiple of 8) with the vector `v`.
    fn lcs128_from(&self, b: &[u8], need: usize, mut v: u128, k0: usize) -> usize {
        let (la, lb) = (self.pattern.len(), b.len());
        let mut k = k0;
        for chunk in b[k0..].chunks(8) {
            // The bound is never below `rest`: no need to count before `rest < need`.
            if k > 0 && lb - k < need {
                let bound = split_bound(v, la, lb - k);
                if bound < need {
                    return bound;
                }
            }
            for &c in chunk {
                v = step1(v, self.m128(c));
            }
            k += chunk.len();
        }
        (!v).count_ones() as usize
    }

    /// [`RowTable::lcs`] against two texts, interleaved so that the two dependency chains run
    /// side by side; each result is the one [`RowTable::lcs`] gives.
    fn lcs_pair(&self, (b1, need1): (&[u8], usize), (b2, need2): (&[u8], usize)) -> (usize, usize) {
        let la = self.pattern.len();
        if la > 128 {
            return (self.lcs(b1, need1), self.lcs(b2, need2));
        }
        let common = b1.len().min(b2.len()) / 8 * 8;
        let (mut v1, mut v2) = (u128::MAX, u128::MAX);
        let mut k = 0;
        while k < common {
            if k > 0
                && ((b1.len() - k < need1 && split_bound(v1, la, b1.len() - k) < need1)
                    || (b2.len() - k < need2 && split_bound(v2, la, b2.len() - k) < need2))
            {
                break;
            }
            for (&c1, &c2) in b1[k..k + 8].iter().zip(&b2[k..k + 8]) {
                v1 = step1(v1, self.m128(c1));
                v2 = step1(v2, self.m128(c2));
            }
            k += 8;
        }
        (
            self.lcs128_from(b1, need1, v1, k),
            self.lcs128_from(b2, need2, v2, k),
        )
    }
}

/// Four patterns of up to 128 ASCII characters side by side, one lane each, indexed by the
/// text's byte: one text is compared with the four at once ([`Scorer::rows`]). The lane
/// operations are plain loops over four words, which the compiler turns into vector
/// instructions.
pub(crate) struct Table4 {
    patterns: [Vec<u8>; 4],
    lo: [[u64; 4]; 256],
    hi: [[u64; 4]; 256],
}

impl Table4 {
    fn new() -> Box<Table4> {
        Box::new(Table4 {
            patterns: Default::default(),
            lo: [[0; 4]; 256],
            hi: [[0; 4]; 256],
        })
    }

    /// Makes lane `l` the table of `pattern` (ASCII, at most 128 bytes).
    fn set(&mut self, l: usize, pattern: &[u8]) {
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
    /// once it cannot reach it, as [`RowTable::lcs`]). Lanes with `live[l] == false` are not
    /// wanted (0). Only called when [`lanes_available`].
    fn lcs(&self, texts: [(&[u8], [usize; 4], [bool; 4]); 2]) -> [[usize; 4]; 2] {
        let la: [usize; 4] = std::array::from_fn(|l| self.patterns[l].len());
        lanes::lcs4(&self.lo, &self.hi, la, texts)
    }
}

/// `true` if [`Table4`] can run here: on x86-64 with AVX2 and POPCNT (checked once, then
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

/// The four-lane LCS of [`Table4`] in AVX2 instructions.
#[cfg(target_arch = "x86_64")]
mod lanes {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi64, _mm256_and_si256, _mm256_andnot_si256, _mm256_extract_epi64,
        _mm256_or_si256, _mm256_set_epi64x, _mm256_set1_epi64x, _mm256_srli_epi64,
        _mm256_xor_si256,
    };

    use super::split_bound;

    /// [`super::Table4::lcs`] of two texts; the caller has checked
    /// [`super::lanes_available`].
    #[allow(unsafe_code)]
    pub(super) fn lcs4(
        lo: &[[u64; 4]; 256],
        hi: &[[u64; 4]; 256],
        la: [usize; 4],
        texts: [(&[u8], [usize; 4], [bool; 4]); 2],
    ) -> [[usize; 4]; 2] {
        assert!(super::lanes_available(), "AVX2 and POPCNT are required");
        // SAFETY: `lcs4_avx2` is safe code compiled for AVX2 and POPCNT; calling it needs only
        // that the CPU has both, which the assertion above has checked.
        unsafe { lcs4_avx2(lo, hi, la, texts) }
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

    /// One text's state in [`lcs4_avx2`]: lane `l` holds bits 0..64 of its 128-bit vector in
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

    /// The early-exit check at column `$k` (as [`super::RowTable::lcs`]): lanes that cannot
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
                        let bound = split_bound(v, $la[l], rest);
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

    /// Two texts against the four patterns, side by side while both last (two independent
    /// dependency chains), then each to its end.
    #[target_feature(enable = "avx2,popcnt")]
    fn lcs4_avx2(
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
            for i in k..k + 8 {
                step!(t1, lo, hi, t1.b[i]);
                step!(t2, lo, hi, t2.b[i]);
            }
            k += 8;
        }
        [finish(lo, hi, la, t1, k), finish(lo, hi, la, t2, k)]
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod lanes {
    /// Never called: [`super::lanes_available`] is `false` here.
    pub(super) fn lcs4(
        _: &[[u64; 4]; 256],
        _: &[[u64; 4]; 256],
        _: [usize; 4],
        _: [(&[u8], [usize; 4], [bool; 4]); 2],
    ) -> [[usize; 4]; 2] {
        unreachable!("four-lane LCS without AVX2")
    }
}

/// Length of the longest common subsequence of `a` and `b` (bit-parallel).
pub fn lcs_len(a: &[char], b: &[char]) -> usize {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let (p, t) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    PatternMasks::new(p).lcs(t, &mut Vec::new(), 0)
}

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
pub fn upper_bound(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let common = Histogram::new(&a)
        .common(&Histogram::new(&b))
        .unwrap_or(a.len().min(b.len()));
    ratio_of(common.min(a.len().min(b.len())), a.len() + b.len())
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One string prepared for comparison.
pub(crate) struct Prepared {
    /// Unique per value, so cached pattern masks are never used for another string.
    id: u64,
    pub(crate) text: String,
    pub(crate) chars: Vec<char>,
    pub(crate) hist: Histogram,
    /// The text is ASCII, so its bytes are its characters.
    ascii: bool,
    b2j: Option<B2j>,
}

impl Prepared {
    pub(crate) fn new(text: String) -> Prepared {
        let chars: Vec<char> = text.chars().collect();
        let hist = Histogram::new(&chars);
        Prepared {
            ascii: text.is_ascii(),
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            text,
            chars,
            hist,
            b2j: None,
        }
    }
}

/// What the bounds read of an item, kept in row order during [`Scorer::rows`] so that a row's
/// texts are read one after another.
#[derive(Clone, Debug)]
pub(crate) struct Brief<'t> {
    len: usize,
    ascii: bool,
    hist: Histogram,
    text: &'t [u8],
}

impl Prepared {
    /// The item's [`Brief`].
    pub(crate) fn brief(&self) -> Brief<'_> {
        Brief {
            len: self.chars.len(),
            ascii: self.ascii,
            hist: self.hist.clone(),
            text: self.text.as_bytes(),
        }
    }
}

/// The smallest match count `m` with `ratio_of(m, total) >= threshold` (`total + 1` if none).
fn need(threshold: f64, total: usize) -> usize {
    let mut m = ((threshold * total as f64 / 2.0).floor().max(0.0) as usize).saturating_sub(1);
    while m <= total && ratio_of(m, total) < threshold {
        m += 1;
    }
    m
}

/// Counters of how many pairs were pruned and how many computed in full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PairStats {
    /// Pairs looked at.
    pub pairs: u64,
    /// Pairs ruled out by the length bound.
    pub pruned_length: u64,
    /// Pairs ruled out by the character-multiset bound.
    pub pruned_histogram: u64,
    /// Pairs ruled out by the LCS bound (difflib only: its ratio is never above the indel ratio).
    pub pruned_lcs: u64,
    /// Pairs whose ratio was computed in full.
    pub computed: u64,
}

impl std::ops::AddAssign for PairStats {
    fn add_assign(&mut self, o: PairStats) {
        self.pairs += o.pairs;
        self.pruned_length += o.pruned_length;
        self.pruned_histogram += o.pruned_histogram;
        self.pruned_lcs += o.pruned_lcs;
        self.computed += o.computed;
    }
}

/// Compares prepared entries with a metric, pruning with bounds when allowed.
pub(crate) struct Scorer<'m> {
    metric: &'m dyn Similarity,
    /// `prune` as asked, for scorers of other threads.
    prune_requested: bool,
    prune: bool,
    masks: [Option<(u64, PatternMasks)>; 2],
    needs: Vec<u32>,
    need_for: f64,
    stamp: [u64; 2],
    tick: u64,
    last: Option<u64>,
    scratch: Vec<u64>,
    /// The pattern of the current row ([`Scorer::row`]).
    row_table: Option<Box<RowTable>>,
    /// The four patterns of [`Scorer::rows`].
    table4: Option<Box<Table4>>,
    /// [`lanes_available`], asked once.
    lanes: bool,
    pub(crate) stats: PairStats,
}

impl<'m> Scorer<'m> {
    pub(crate) fn new(metric: &'m dyn Similarity, prune: bool) -> Scorer<'m> {
        Scorer {
            metric,
            prune_requested: prune,
            prune: prune && metric.bounded_by_lcs(),
            masks: [None, None],
            needs: Vec::new(),
            need_for: f64::NAN,
            stamp: [0; 2],
            tick: 0,
            last: None,
            scratch: Vec::new(),
            row_table: None,
            table4: None,
            lanes: lanes_available(),
            stats: PairStats::default(),
        }
    }

    /// A new scorer with the same metric and pruning (for another thread).
    pub(crate) fn fork(&self) -> Scorer<'m> {
        Scorer::new(self.metric, self.prune_requested)
    }

    /// `true` if the metric gives the same ratio for `(a, b)` and `(b, a)` ([`Indel`]).
    pub(crate) fn symmetric(&self) -> bool {
        self.metric.builtin() == Some(Builtin::Indel)
    }

    /// Forgets cached pattern masks (call when the items change).
    pub(crate) fn invalidate(&mut self) {
        self.masks = [None, None];
    }

    /// The ratio of `items[a]` (Python's `a`) and `items[b]` if it is at least `threshold`.
    pub(crate) fn at_least(
        &mut self,
        items: &mut [Prepared],
        a: usize,
        b: usize,
        threshold: f64,
    ) -> Option<f64> {
        if self.metric.builtin() == Some(Builtin::Difflib) && items[b].b2j.is_none() {
            items[b].b2j = Some(B2j::new(&items[b].chars));
        }
        self.at_least_shared(items, a, b, threshold)
    }

    /// Prepares what [`Scorer::at_least_shared`] needs from `items` (difflib's `b2j` tables).
    pub(crate) fn prepare_shared(&self, items: &mut [Prepared]) {
        if self.metric.builtin() == Some(Builtin::Difflib) {
            for it in items.iter_mut().filter(|it| it.b2j.is_none()) {
                it.b2j = Some(B2j::new(&it.chars));
            }
        }
    }

    /// [`Scorer::at_least`] on items it does not change (several threads can share them); a
    /// difflib `b2j` table missing from `items[b]` is built for this pair only.
    pub(crate) fn at_least_shared(
        &mut self,
        items: &[Prepared],
        a: usize,
        b: usize,
        threshold: f64,
    ) -> Option<f64> {
        self.stats.pairs += 1;
        let (la, lb) = (items[a].chars.len(), items[b].chars.len());
        let total = la + lb;
        let builtin = self.metric.builtin();
        // The smallest match count that reaches the threshold: the bounds compare integers.
        let need = if self.prune && total > 0 {
            self.need(threshold, total)
        } else {
            0
        };
        if self.prune && total > 0 {
            if la.min(lb) < need {
                self.stats.pruned_length += 1;
                return None;
            }
            if let Some(common) = items[a].hist.common(&items[b].hist)
                && common < need
            {
                self.stats.pruned_histogram += 1;
                return None;
            }
            if builtin == Some(Builtin::Difflib) && la.min(lb) > 0 {
                let lcs = self.lcs(items, a, b, need);
                if lcs < need {
                    self.stats.pruned_lcs += 1;
                    return None;
                }
            }
        }
        self.stats.computed += 1;
        let r = match builtin {
            Some(Builtin::Indel) => {
                if la.min(lb) == 0 {
                    ratio_of(0, total)
                } else {
                    ratio_of(self.lcs(items, a, b, need), total)
                }
            }
            Some(Builtin::Difflib) => {
                let built;
                let b2j = match &items[b].b2j {
                    Some(t) => t,
                    None => {
                        built = B2j::new(&items[b].chars);
                        &built
                    }
                };
                ratio_of(
                    difflib_matches(&items[a].chars, &items[b].chars, b2j),
                    total,
                )
            }
            None => self.metric.ratio(&items[a].text, &items[b].text),
        };
        (r >= threshold).then_some(r)
    }

    /// Prepares one item that [`Scorer::prepare_shared`] did not see (difflib's `b2j` table).
    pub(crate) fn prepare_one(&self, item: &mut Prepared) {
        if self.metric.builtin() == Some(Builtin::Difflib) && item.b2j.is_none() {
            item.b2j = Some(B2j::new(&item.chars));
        }
    }

    /// Rows `x0..x1` of the triangle of `ks`: each `ks[x]` against `ks[x + 1..]`, as
    /// [`Scorer::row`] does, pushing the pairs that reach `threshold` to `hits`. With
    /// [`Indel`] and four ASCII patterns of at most 128 characters in a row, the texts after
    /// them are compared with the four at once ([`Table4`]); the answers are the same.
    pub(crate) fn rows(
        &mut self,
        items: &[Prepared],
        (ks, briefs): (&[usize], &[Brief<'_>]),
        (x0, x1): (usize, usize),
        threshold: f64,
        hits: &mut Vec<((usize, usize), f64)>,
    ) {
        let mut x = x0;
        while x < x1 {
            let quad = x + 4 <= x1
                && self.lanes
                && self.metric.builtin() == Some(Builtin::Indel)
                && ks[x..x + 4].iter().all(|&a| {
                    let la = items[a].chars.len();
                    items[a].ascii && (1..=128).contains(&la)
                });
            if !quad {
                self.row(items, ks[x], &ks[x + 1..], threshold, hits);
                x += 1;
                continue;
            }
            for y in x..x + 3 {
                self.row(items, ks[y], &ks[y + 1..x + 4], threshold, hits);
            }
            self.rows4(
                items,
                [ks[x], ks[x + 1], ks[x + 2], ks[x + 3]],
                (&ks[x + 4..], &briefs[x + 4..]),
                threshold,
                hits,
            );
            x += 4;
        }
    }

    /// Four ASCII patterns of 1 to 128 characters against each of `bs`.
    fn rows4(
        &mut self,
        items: &[Prepared],
        rows: [usize; 4],
        (bs, briefs): (&[usize], &[Brief<'_>]),
        threshold: f64,
        hits: &mut Vec<((usize, usize), f64)>,
    ) {
        let mut t = self.table4.take().unwrap_or_else(Table4::new);
        for (l, &a) in rows.iter().enumerate() {
            t.set(l, items[a].text.as_bytes());
        }
        let ordered = |a: usize, b: usize| if b < a { (b, a) } else { (a, b) };
        let push4 = |hits: &mut Vec<((usize, usize), f64)>,
                     rows: [usize; 4],
                     b: usize,
                     live: [bool; 4],
                     lcs: [usize; 4]| {
            for (l, &a) in rows.iter().enumerate() {
                let r = ratio_of(lcs[l], items[a].chars.len() + items[b].chars.len());
                if live[l] && r >= threshold {
                    hits.push((ordered(a, b), r));
                }
            }
        };
        // A text waiting for a second one: (item, text, need, live).
        type Waiting<'t> = (usize, &'t [u8], [usize; 4], [bool; 4]);
        let mut pending: Option<Waiting<'_>> = None;
        let la = rows.map(|a| items[a].chars.len());
        let hists = rows.map(|a| &items[a].hist);
        // The needs of every total these pairs can have, read without checks in the loop.
        let longest = briefs.iter().map(|d| d.len).max().unwrap_or(0);
        let needs = self.needs_upto(threshold, la.iter().max().copied().unwrap_or(0) + longest);
        let mut stats = PairStats::default();
        for (&b, d) in bs.iter().zip(briefs) {
            let lb = d.len;
            if lb == 0 || !d.ascii {
                for a in rows {
                    let (x, y) = ordered(a, b);
                    if let Some(r) = self.at_least_shared(items, x, y, threshold) {
                        hits.push(((x, y), r));
                    }
                }
                continue;
            }
            let mut need = [0usize; 4];
            let mut live = [true; 4];
            stats.pairs += 4;
            if self.prune {
                for l in 0..4 {
                    need[l] = needs[la[l] + lb] as usize;
                    if la[l].min(lb) < need[l] {
                        stats.pruned_length += 1;
                        live[l] = false;
                    } else if let Some(common) = hists[l].common(&d.hist)
                        && common < need[l]
                    {
                        stats.pruned_histogram += 1;
                        live[l] = false;
                    }
                }
            }
            stats.computed += live.iter().filter(|&&x| x).count() as u64;
            if live == [false; 4] {
                continue;
            }
            // Texts go through the lanes two at a time.
            let Some((b1, t1, need1, live1)) = pending.take() else {
                pending = Some((b, d.text, need, live));
                continue;
            };
            let [r1, r2] = t.lcs([(t1, need1, live1), (d.text, need, live)]);
            for (bb, lv, lcs) in [(b1, live1, r1), (b, live, r2)] {
                push4(hits, rows, bb, lv, lcs);
            }
        }
        if let Some((b1, t1, need1, live1)) = pending {
            let empty: &[u8] = &[];
            let [r1, _] = t.lcs([(t1, need1, live1), (empty, [0; 4], [false; 4])]);
            push4(hits, rows, b1, live1, r1);
        }
        self.table4 = Some(t);
        self.stats += stats;
    }

    /// [`need`] of every total `0..=max` for `threshold`.
    fn needs_upto(&mut self, threshold: f64, max: usize) -> Vec<u32> {
        (0..=max)
            .map(|total| self.need(threshold, total) as u32)
            .collect()
    }

    /// [`Scorer::at_least_shared`] of `items[a]` against each of `bs` (before or after `a`;
    /// `a` itself is skipped), pushing the pairs that reach `threshold` to `hits` as (earlier,
    /// later). With [`Indel`], an ASCII `a` of at most 256 characters and ASCII texts, the
    /// comparisons run through one [`RowTable`], two texts at a time; the answers are the same.
    pub(crate) fn row(
        &mut self,
        items: &[Prepared],
        a: usize,
        bs: &[usize],
        threshold: f64,
        hits: &mut Vec<((usize, usize), f64)>,
    ) {
        let ordered = |b: usize| if b < a { (b, a) } else { (a, b) };
        let la = items[a].chars.len();
        if self.metric.builtin() != Some(Builtin::Indel) || !items[a].ascii || la == 0 || la > 256 {
            for &b in bs.iter().filter(|&&b| b != a) {
                let (x, y) = ordered(b);
                if let Some(r) = self.at_least_shared(items, x, y, threshold) {
                    hits.push(((x, y), r));
                }
            }
            return;
        }
        // Indel is symmetric: `a` is the pattern whichever side it is on.
        let mut pending: Option<(usize, usize)> = None; // (b, need)
        for &b in bs.iter().filter(|&&b| b != a) {
            let lb = items[b].chars.len();
            if lb == 0 || !items[b].ascii {
                let (x, y) = ordered(b);
                if let Some(r) = self.at_least_shared(items, x, y, threshold) {
                    hits.push(((x, y), r));
                }
                continue;
            }
            self.stats.pairs += 1;
            let total = la + lb;
            let need = if self.prune {
                self.need(threshold, total)
            } else {
                0
            };
            if self.prune {
                if la.min(lb) < need {
                    self.stats.pruned_length += 1;
                    continue;
                }
                if let Some(common) = items[a].hist.common(&items[b].hist)
                    && common < need
                {
                    self.stats.pruned_histogram += 1;
                    continue;
                }
            }
            self.stats.computed += 1;
            let Some((b1, need1)) = pending.take() else {
                pending = Some((b, need));
                continue;
            };
            let t = self.row_table(&items[a]);
            let (l1, l2) = t.lcs_pair(
                (items[b1].text.as_bytes(), need1),
                (items[b].text.as_bytes(), need),
            );
            for (bb, l) in [(b1, l1), (b, l2)] {
                let r = ratio_of(l, la + items[bb].chars.len());
                if r >= threshold {
                    hits.push((ordered(bb), r));
                }
            }
        }
        if let Some((b1, need1)) = pending {
            let t = self.row_table(&items[a]);
            let l = t.lcs(items[b1].text.as_bytes(), need1);
            let r = ratio_of(l, la + items[b1].chars.len());
            if r >= threshold {
                hits.push((ordered(b1), r));
            }
        }
    }

    /// The row table of `item` (ASCII, at most 256 characters), built if not the current one.
    fn row_table(&mut self, item: &Prepared) -> &RowTable {
        let t = self.row_table.get_or_insert_with(RowTable::new);
        if t.id != item.id {
            t.set(item.id, item.text.as_bytes());
        }
        t
    }

    /// [`need`], remembered per total length for the current threshold.
    #[inline]
    fn need(&mut self, threshold: f64, total: usize) -> usize {
        if self.need_for.to_bits() == threshold.to_bits()
            && let Some(&m) = self.needs.get(total)
            && m != u32::MAX
        {
            return m as usize;
        }
        self.need_slow(threshold, total)
    }

    #[cold]
    #[inline(never)]
    fn need_slow(&mut self, threshold: f64, total: usize) -> usize {
        if self.need_for.to_bits() != threshold.to_bits() {
            self.need_for = threshold;
            self.needs.clear();
        }
        if total >= 4096 {
            return need(threshold, total);
        }
        if self.needs.len() <= total {
            self.needs.resize(total + 1, u32::MAX);
        }
        self.needs[total] = need(threshold, total) as u32;
        self.needs[total] as usize
    }

    /// LCS of two prepared items (at least `need`, else some value below it). The pattern masks
    /// of the last two patterns are kept; LCS is symmetric, so either side can be the pattern.
    fn lcs(&mut self, items: &[Prepared], a: usize, b: usize, need: usize) -> usize {
        let (ia, ib) = (items[a].id, items[b].id);
        let slot = self
            .masks
            .iter()
            .position(|m| matches!(m, Some((k, _)) if *k == ia || *k == ib));
        let slot = match slot {
            Some(s) => s,
            None => {
                // Keep the pattern that repeated last time; replace the other slot.
                let (pat, victim) = if self.last == Some(ib) {
                    (b, self.oldest())
                } else {
                    (a, self.oldest())
                };
                // Reuse the evicted pattern's table (no allocation).
                let table = self.masks[victim].take().and_then(|(_, m)| m.into_table());
                self.masks[victim] = Some((
                    items[pat].id,
                    PatternMasks::with_table(&items[pat].chars, table),
                ));
                victim
            }
        };
        self.stamp[slot] = self.tick;
        self.tick += 1;
        self.last = Some(ib);
        let (k, masks) = self.masks[slot].as_ref().expect("slot is filled");
        let text = if *k == ia { &items[b] } else { &items[a] };
        if text.ascii
            && let Some(t) = &masks.small
        {
            return lcs_ascii(t, masks.len, text.text.as_bytes(), need);
        }
        if text.ascii
            && let Some(t) = &masks.medium
        {
            return lcs_ascii2(t, masks.len, text.text.as_bytes(), need);
        }
        masks.lcs(&text.chars, &mut self.scratch, need)
    }

    fn oldest(&self) -> usize {
        if self.masks[0].is_none() {
            0
        } else if self.masks[1].is_none() || self.stamp[1] < self.stamp[0] {
            1
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn matches_the_documented_ratios() {
        let r = Difflib.ratio(
            "use async/await for all database operations",
            "use async/await for all database operations and queries",
        );
        assert_eq!(format!("{r:.4}"), "0.8776");
        let r = Difflib.ratio(
            "service layer lives in src/services",
            "services live in src/services directory",
        );
        assert_eq!(format!("{r:.4}"), "0.7568");
        assert_eq!(Difflib.ratio("", ""), 1.0);
        assert_eq!(Difflib.ratio("a", ""), 0.0);
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
        let mut t4 = Table4::new();
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

    #[test]
    fn bounds_hold() {
        for (a, b) in [("abc", "abd"), ("kitten", "sitting"), ("", "x"), ("ü", "ü")] {
            assert!(upper_bound(a, b) >= Indel.ratio(a, b));
            assert!(Indel.ratio(a, b) >= Difflib.ratio(a, b));
        }
    }
}
