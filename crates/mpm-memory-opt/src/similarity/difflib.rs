//! Python's `difflib.SequenceMatcher(None, a, b)` over `char` slices: the `b2j` index, the
//! matching blocks (Ratcliff/Obershelp) and the ratio, bit for bit as Python computes them.

use super::char_map::CharMap;
use super::ratio_of;

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
pub(crate) fn ratio_chars(a: &[char], b: &[char]) -> f64 {
    let b2j = B2j::new(b);
    ratio_of(matches(a, b, &b2j), a.len() + b.len())
}

/// The number of matched characters of Python's `get_matching_blocks`.
pub(crate) fn matches(a: &[char], b: &[char], b2j: &B2j) -> usize {
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
