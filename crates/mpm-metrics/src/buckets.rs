//! The fixed bucket layout a histogram is exposed with.
//!
//! A [`Histogram`](crate::Histogram) records into 2,002 internal log-linear buckets, far too
//! many to expose. The Prometheus text shows each histogram at a short, fixed list of upper
//! bounds instead: the same `le` values on every scrape, whatever was recorded, so that
//! `histogram_quantile` and `rate` over `_bucket` series work. A series is counted at a bound
//! when the value reported for its internal bucket (the bucket's midpoint, within 1% of every
//! value in it) is at most the bound: counts at a bound are exact except for values within 1% of
//! it.
//!
//! The default layout depends on the histogram's [`Unit`]:
//!
//! | unit | bounds |
//! |---|---|
//! | [`Unit::Seconds`] | 1 us, 5 us, 10 us, 50 us, ... 1 s, 5 s, 10 s (15 bounds, in seconds) |
//! | [`Unit::Bytes`] | 64 B, 256 B, 1 KiB, 4 KiB, ... 256 MiB, 1 GiB (13 bounds, powers of 4) |
//! | [`Unit::None`] | 1, 5, 10, 50, ... 500,000, 1,000,000 (13 bounds) |
//!
//! Give another with [`Registry::set_buckets`](crate::Registry::set_buckets) or
//! [`Scope::histogram_with_buckets`](crate::Scope::histogram_with_buckets).

use std::sync::Arc;

use crate::{Error, Unit};

/// The upper bounds (in the histogram's reported unit: seconds for [`Unit::Seconds`]) that a
/// histogram is exposed with; `+Inf` is always added. Cheap to clone.
///
/// ```
/// use mpm_metrics::{Buckets, Unit};
///
/// let b = Buckets::new([0.5, 0.1, 1.0])?;
/// assert_eq!(b.bounds(), &[0.1, 0.5, 1.0]);
/// assert!(Buckets::new([f64::NAN]).is_err());
/// assert_eq!(Buckets::default_for(Unit::Seconds).bounds().first(), Some(&1e-6));
/// # Ok::<(), mpm_metrics::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Buckets {
    bounds: Arc<[f64]>,
}

impl Buckets {
    /// A layout from these bounds, sorted. At least one bound; each finite and at least 0;
    /// no bound twice. Anything else is refused with [`Error::InvalidBuckets`].
    pub fn new(bounds: impl IntoIterator<Item = f64>) -> Result<Self, Error> {
        let mut bounds: Vec<f64> = bounds.into_iter().collect();
        if bounds.is_empty() {
            return Err(Error::InvalidBuckets("no bounds were given"));
        }
        if bounds.iter().any(|b| !b.is_finite() || *b < 0.0) {
            return Err(Error::InvalidBuckets(
                "every bound must be finite and at least 0",
            ));
        }
        bounds.sort_by(f64::total_cmp);
        if bounds.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::InvalidBuckets("a bound is given twice"));
        }
        // -0.0 would render as "-0.0".
        for b in &mut bounds {
            *b += 0.0;
        }
        Ok(Self {
            bounds: bounds.into(),
        })
    }

    /// `count` bounds from `start`, each `factor` times the one before (like Prometheus'
    /// `ExponentialBuckets`). `start` must be above 0, `factor` above 1, `count` at least 1.
    pub fn exponential(start: f64, factor: f64, count: usize) -> Result<Self, Error> {
        if !(start > 0.0 && factor > 1.0 && count > 0) {
            return Err(Error::InvalidBuckets(
                "exponential buckets need start > 0, factor > 1 and count >= 1",
            ));
        }
        Self::new(std::iter::successors(Some(start), |b| Some(b * factor)).take(count))
    }

    /// The default layout for a unit; see the [module docs](self).
    pub fn default_for(unit: Unit) -> Self {
        let bounds: Vec<f64> = match unit {
            Unit::Seconds => one_five(-6, 1),
            Unit::Bytes => (0..13).map(|i| (64u64 << (2 * i)) as f64).collect(),
            Unit::None => one_five(0, 6),
        };
        Self::new(bounds).expect("the default layouts are valid")
    }

    /// The bounds, ascending.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }
}

/// 1 and 5 times each power of ten from `10^lo`, ending with `10^hi`.
fn one_five(lo: i32, hi: i32) -> Vec<f64> {
    let mut out = Vec::new();
    for e in lo..hi {
        // Parsing the decimal text gives the nearest f64, so 1e-6 prints as 1e-6.
        out.push(format!("1e{e}").parse().expect("a valid float"));
        out.push(format!("5e{e}").parse().expect("a valid float"));
    }
    out.push(format!("1e{hi}").parse().expect("a valid float"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layouts_are_the_documented_ones() {
        let s = Buckets::default_for(Unit::Seconds);
        assert_eq!(s.bounds().len(), 15);
        assert_eq!((s.bounds()[0], s.bounds()[14]), (1e-6, 10.0));
        let b = Buckets::default_for(Unit::Bytes);
        assert_eq!(b.bounds().len(), 13);
        assert_eq!(
            (b.bounds()[0], b.bounds()[12]),
            (64.0, 1024.0 * 1024.0 * 1024.0)
        );
        let n = Buckets::default_for(Unit::None);
        assert_eq!(n.bounds().len(), 13);
        assert_eq!((n.bounds()[0], n.bounds()[12]), (1.0, 1e6));
    }

    #[test]
    fn bad_layouts_are_refused() {
        assert!(Buckets::new([]).is_err());
        assert!(Buckets::new([1.0, 1.0]).is_err());
        assert!(Buckets::new([-1.0]).is_err());
        assert!(Buckets::new([f64::INFINITY]).is_err());
        assert!(Buckets::exponential(0.0, 2.0, 3).is_err());
        assert!(Buckets::exponential(1.0, 1.0, 3).is_err());
        assert_eq!(
            Buckets::exponential(1.0, 2.0, 3).unwrap().bounds(),
            &[1.0, 2.0, 4.0]
        );
        assert_eq!(Buckets::new([-0.0]).unwrap().bounds()[0].to_string(), "0");
    }
}
