//! Jitter and exponential backoff.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

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

/// Ends the pauses after failed creations once a creation succeeds: each place that failed
/// pauses on its own backoff (up to the configured maximum, a second by default), and
/// without this signal a server back after a long outage would be used by one place at a
/// time, as each place's pause ran out. While creations fail nothing signals, so the pauses
/// (and the server's relief) hold.
pub(crate) struct Recovery {
    /// Successful creations so far (wrapping): a place compares it with what it read before
    /// its attempt, so that a success during the attempt also ends its pause.
    successes: AtomicU64,
    notify: Notify,
}

impl Recovery {
    pub(crate) fn new() -> Self {
        Recovery {
            successes: AtomicU64::new(0),
            notify: Notify::new(),
        }
    }

    /// The count to hand to [`pause`](Self::pause), read before a creation attempt.
    pub(crate) fn seen(&self) -> u64 {
        self.successes.load(Ordering::Acquire)
    }

    /// A creation succeeded: ends every pause.
    pub(crate) fn succeeded(&self) {
        self.successes.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    /// Pauses for `pause`, unless a creation succeeds meanwhile or has since `seen` was read.
    /// Returns whether a success cut it short (the caller then resets its backoff).
    pub(crate) async fn pause(&self, pause: Duration, seen: u64) -> bool {
        // Registered on creation: a success from here on wakes it even before it is polled.
        let notified = self.notify.notified();
        if self.seen() != seen {
            return true;
        }
        tokio::select! {
            biased;
            () = notified => true,
            () = tokio::time::sleep(pause) => false,
        }
    }
}
