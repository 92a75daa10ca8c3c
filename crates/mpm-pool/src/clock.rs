//! The pools' millisecond clock: coarse (refreshed by the maintenance task) or precise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Milliseconds since a pool's epoch.
pub(crate) type Ms = u64;

/// "Never" in [`Ms`].
pub(crate) const NEVER: Ms = u64::MAX;

pub(crate) fn ms(d: Duration) -> Ms {
    // Not through `as_millis`: its 128-bit arithmetic costs more, on every contended get.
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
        .min(NEVER - 1)
}

/// The pool's clock in milliseconds. With maintenance on, the hot path reads a coarse value
/// that the maintenance task refreshes every `lag` (and every precise read moves forward), so
/// getting and returning an object never calls the system clock. Comparisons that must not
/// err on the optimistic side add `lag`.
pub(crate) struct Clock {
    pub(crate) epoch: Instant,
    pub(crate) coarse: Option<AtomicU64>,
    pub(crate) lag: Ms,
}

impl Clock {
    pub(crate) fn new(tick: Option<Duration>) -> Self {
        Clock {
            epoch: Instant::now(),
            coarse: tick.map(|_| AtomicU64::new(0)),
            lag: tick.map_or(0, ms),
        }
    }

    pub(crate) fn at(&self, t: Instant) -> Ms {
        ms(t.saturating_duration_since(self.epoch))
    }

    /// Reads the system clock (and moves the coarse clock forward).
    pub(crate) fn precise(&self) -> Ms {
        let now = self.at(Instant::now());
        if let Some(c) = &self.coarse
            && c.load(Ordering::Relaxed) < now
        {
            c.fetch_max(now, Ordering::Relaxed);
        }
        now
    }

    /// How often the coarse clock is refreshed (and waiters swept), if there is one.
    pub(crate) fn tick(&self) -> Option<Duration> {
        self.coarse
            .as_ref()
            .map(|_| Duration::from_millis(self.lag.max(1)))
    }

    /// The coarse time if there is one, else the precise time.
    pub(crate) fn now(&self) -> Ms {
        match &self.coarse {
            Some(c) => c.load(Ordering::Relaxed),
            None => self.precise(),
        }
    }
}
