//! Similarity of two entries: the [`Similarity`] trait and its two built-in metrics, Python's
//! `difflib` ratio ([`difflib`]) and the indel ratio over a bit-parallel LCS ([`lcs`]), and the
//! upper bounds ([`bounds`]) that let the optimizer skip pairs that cannot reach a threshold.

pub(crate) mod bounds;
mod char_map;
pub(crate) mod difflib;
pub(crate) mod lcs;

use std::any::Any;

/// A similarity metric between two strings, in `0.0..=1.0` (1.0 for equal strings).
///
/// Implement it to plug your own metric into [`crate::Options::metric`]. The optimizer prunes
/// candidate pairs with character-count bounds only when [`Similarity::bounded_by_lcs`] says it
/// is safe; a custom metric is compared on every pair otherwise.
pub trait Similarity: Any + Send + Sync + std::fmt::Debug {
    /// A short name for reports (`"difflib"`, `"indel"`).
    fn name(&self) -> &str;
    /// The similarity of `a` and `b`.
    fn ratio(&self, a: &str, b: &str) -> f64;
    /// `true` if `ratio(a, b) <= 2 * m / (len(a) + len(b))` (lengths in `char`s) whenever `a` and `b`
    /// have a common subsequence of at most `m` characters. Both built-in metrics satisfy this.
    fn bounded_by_lcs(&self) -> bool {
        false
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
        }
    )*};
}

forward_similarity!(&'static S, Box<S>, std::sync::Arc<S>);

/// The built-in metric `metric` is, if any: the optimizer has a prepared fast path for each.
pub(crate) fn builtin(metric: &dyn Similarity) -> Option<Builtin> {
    let any: &dyn Any = metric;
    if any.is::<Indel>() {
        Some(Builtin::Indel)
    } else if any.is::<Difflib>() {
        Some(Builtin::Difflib)
    } else {
        None
    }
}

/// The built-in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
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
        difflib::ratio_chars(&a, &b)
    }
    fn bounded_by_lcs(&self) -> bool {
        true
    }
}

impl Similarity for Indel {
    fn name(&self) -> &str {
        "indel"
    }
    fn ratio(&self, a: &str, b: &str) -> f64 {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        ratio_of(lcs::lcs_len(&a, &b), a.len() + b.len())
    }
    fn bounded_by_lcs(&self) -> bool {
        true
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
/// The smallest match count `m` with `ratio_of(m, total) >= threshold` (`total + 1` if none).
pub(crate) fn need(threshold: f64, total: usize) -> usize {
    let mut m = ((threshold * total as f64 / 2.0).floor().max(0.0) as usize).saturating_sub(1);
    while m <= total && ratio_of(m, total) < threshold {
        m += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn built_in_metrics_are_recognised_behind_pointers() {
        let arc: std::sync::Arc<dyn Similarity> = std::sync::Arc::new(Indel);
        assert_eq!(builtin(arc.as_ref()), Some(Builtin::Indel));
        assert_eq!(builtin(&Difflib), Some(Builtin::Difflib));
        #[derive(Debug)]
        struct Mine;
        impl Similarity for Mine {
            fn name(&self) -> &str {
                "mine"
            }
            fn ratio(&self, _: &str, _: &str) -> f64 {
                0.0
            }
        }
        assert_eq!(builtin(&Mine), None);
    }
}
