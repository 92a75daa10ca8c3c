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
///
/// A wait must start its deadline at a precise time, and reading the system clock (or Tokio's)
/// there cost about a tenth of a contended get. So each tick also sets the offset from the
/// TSC (through `quanta`, as the statistics' timers) to Tokio's clock, and [`Clock::fast_now`]
/// reads Tokio's time from the TSC while ticks come on time. A tick that finds Tokio's clock
/// frozen (paused, in tests: two readings in a row are equal) clears the offset, so that
/// waits read Tokio's clock, which alone moves when the tests advance it.
pub(crate) struct Clock {
    pub(crate) epoch: Instant,
    pub(crate) coarse: Option<AtomicU64>,
    pub(crate) lag: Ms,
    /// The TSC at the epoch.
    tsc_epoch: quanta::Instant,
    /// Tokio's nanoseconds since `epoch` minus the TSC's since `tsc_epoch` (wrapping), as of
    /// the last tick, or [`UNSET`].
    offset: AtomicU64,
    /// The TSC's nanoseconds since `tsc_epoch` at the tick that set `offset`.
    offset_at: AtomicU64,
}

/// No offset from the TSC to Tokio's clock: read Tokio's.
const UNSET: u64 = u64::MAX;

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Clock {
    pub(crate) fn new(tick: Option<Duration>) -> Self {
        Clock {
            epoch: Instant::now(),
            coarse: tick.map(|_| AtomicU64::new(0)),
            lag: tick.map_or(0, ms),
            tsc_epoch: quanta::Instant::now(),
            offset: AtomicU64::new(UNSET),
            offset_at: AtomicU64::new(0),
        }
    }

    /// Sets the offset from the TSC to Tokio's clock (a tick of the maintenance task), or
    /// clears it if Tokio's clock is frozen.
    pub(crate) fn calibrate(&self) {
        let before = Instant::now();
        let tsc = quanta::Instant::now();
        let after = Instant::now();
        if after == before {
            self.offset.store(UNSET, Ordering::Relaxed);
            return;
        }
        if after - before > Duration::from_micros(20) {
            // Interrupted between the readings: keep the last offset.
            return;
        }
        let tokio_ns = ns(before.saturating_duration_since(self.epoch));
        let tsc_ns = ns(tsc.duration_since(self.tsc_epoch));
        self.offset_at.store(tsc_ns, Ordering::Relaxed);
        self.offset
            .store(tokio_ns.wrapping_sub(tsc_ns), Ordering::Relaxed);
    }

    /// Tokio's time read from the TSC, as an instant and in [`Ms`], if a tick set the
    /// offset within the last four ticks.
    pub(crate) fn fast_now(&self) -> Option<(Instant, Ms)> {
        let offset = self.offset.load(Ordering::Relaxed);
        if offset == UNSET {
            return None;
        }
        let tsc_ns = ns(quanta::Instant::now().duration_since(self.tsc_epoch));
        let since_tick = tsc_ns.saturating_sub(self.offset_at.load(Ordering::Relaxed));
        if since_tick > self.lag.saturating_mul(4).saturating_mul(1_000_000) {
            return None;
        }
        let tokio_ns = tsc_ns.wrapping_add(offset);
        let now_ms = tokio_ns / 1_000_000;
        // A sanity check against the coarse clock (never ahead of Tokio's, and refreshed by
        // the same ticks), so that a bad reading cannot set a deadline far off.
        let coarse = self.coarse.as_ref()?.load(Ordering::Relaxed);
        if now_ms.saturating_add(1) < coarse
            || now_ms
                > coarse
                    .saturating_add(self.lag.saturating_mul(4))
                    .saturating_add(1)
        {
            return None;
        }
        Some((self.epoch + Duration::from_nanos(tokio_ns), now_ms))
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

#[cfg(test)]
mod tests {
    use super::{Clock, ms};
    use std::time::Duration;
    use tokio::time::Instant;

    #[tokio::test]
    async fn the_fast_clock_reads_tokio_time_once_a_tick_set_its_offset() {
        let clock = Clock::new(Some(Duration::from_millis(100)));
        assert!(clock.fast_now().is_none(), "no offset before a tick");
        // A calibration interrupted between its readings keeps the last offset: try again.
        let (at, at_ms) = loop {
            clock.calibrate();
            clock.precise();
            if let Some(read) = clock.fast_now() {
                break read;
            }
        };
        let now = Instant::now();
        assert!(
            at <= now + Duration::from_micros(100),
            "{at:?} after {now:?}"
        );
        assert!(
            now - at < Duration::from_millis(20),
            "{at:?} long before {now:?}"
        );
        assert_eq!(at_ms, ms(at - clock.epoch));
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_tokio_clock_turns_the_fast_clock_off() {
        let clock = Clock::new(Some(Duration::from_millis(100)));
        clock.calibrate();
        clock.precise();
        assert!(clock.fast_now().is_none());
        tokio::time::advance(Duration::from_secs(1)).await;
        clock.calibrate();
        clock.precise();
        assert!(clock.fast_now().is_none());
    }
}
