//! Jitter and exponential backoff.

use std::time::Duration;

/// `d` shortened by a random fraction of at most `1/divisor`.
pub(crate) fn jitter(d: Duration, divisor: u32) -> Duration {
    let cut = d / divisor;
    d.saturating_sub(cut.mul_f64(fastrand::f64()))
}

/// The pause before the next creation attempt after `failures` failures.
pub(crate) fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    let exp = min.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let capped = exp.min(max);
    // Between half and all of the capped pause, so that retrying waiters spread out.
    capped / 2 + (capped / 2).mul_f64(fastrand::f64())
}
