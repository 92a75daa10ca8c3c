//! Percentiles of a run's samples (exact: the demo keeps every sample).

/// The `q` quantile (0 to 1) of `samples` by the nearest-rank method; `T::default()` when
/// there are none. Sorts `samples`.
pub fn percentile<T: Ord + Copy + Default>(samples: &mut [T], q: f64) -> T {
    if samples.is_empty() {
        return T::default();
    }
    samples.sort_unstable();
    let rank = (q.clamp(0.0, 1.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// The median of `samples` (the lower one for an even count).
pub fn median<T: Ord + Copy + Default>(samples: &mut [T]) -> T {
    percentile(samples, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(mut samples: Vec<u32>, q: f64, expect: u32) {
        assert_eq!(percentile(&mut samples, q), expect);
    }

    #[test]
    fn nearest_rank() {
        check((1..=100).collect(), 0.99, 99);
        check((1..=100).collect(), 1.0, 100);
        check((1..=100).collect(), 0.5, 50);
        check(vec![7], 0.99, 7);
        check(vec![], 0.5, 0);
        check(vec![3, 1, 2], 0.0, 1);
    }
}
