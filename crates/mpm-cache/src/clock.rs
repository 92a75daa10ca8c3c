//! Coarse clocks for TTL checks: reading one costs one atomic load, never a system call.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the shared ticker thread refreshes the coarse time.
pub const TICK: Duration = Duration::from_millis(1);

/// The latest reading of any clock, in milliseconds (2^60 - 1, some 36 million years): a
/// [`ManualClock`] moved further stops there. The L1 keeps a deadline in 60 bits of a word and
/// takes the largest for "never", so no clock ever passes it.
pub(crate) const MAX_MS: u64 = u64::MAX >> 4;

/// A millisecond clock read with one relaxed atomic load.
///
/// [`Clock::coarse`] (the default) is driven by one background thread per process that stores the
/// milliseconds elapsed since the process first used it, every [`TICK`]. A TTL can therefore be
/// honoured up to one tick late, never early. [`Clock::manual`] returns a clock and a
/// [`ManualClock`] handle that moves it, for deterministic tests.
#[derive(Clone, Debug)]
pub struct Clock {
    now_ms: Arc<AtomicU64>,
}

/// The handle that moves a clock made by [`Clock::manual`].
#[derive(Clone, Debug)]
pub struct ManualClock {
    now_ms: Arc<AtomicU64>,
}

impl ManualClock {
    /// Moves the clock forward by `by` (rounded down to whole milliseconds), up to 2^60 - 1
    /// milliseconds after its start, where it stops.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .now_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(ms).min(MAX_MS))
            });
    }

    /// The clock's current reading in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }
}

fn shared_ticker() -> &'static Arc<AtomicU64> {
    static NOW: OnceLock<Arc<AtomicU64>> = OnceLock::new();
    NOW.get_or_init(|| {
        let now = Arc::new(AtomicU64::new(0));
        let writer = Arc::clone(&now);
        let start = Instant::now();
        // If the thread cannot be spawned the clock stands still: entries then expire late, at
        // the next successful read, which is the safe direction for a cache of derived data.
        let _ = std::thread::Builder::new()
            .name("mpm-cache-clock".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(TICK);
                    let ms = u64::try_from(start.elapsed().as_millis())
                        .unwrap_or(MAX_MS)
                        .min(MAX_MS);
                    writer.store(ms, Ordering::Relaxed);
                }
            });
        now
    })
}

impl Default for Clock {
    fn default() -> Self {
        Self::coarse()
    }
}

impl Clock {
    /// The process-wide coarse clock (starts its ticker thread on first use).
    pub fn coarse() -> Self {
        Self {
            now_ms: Arc::clone(shared_ticker()),
        }
    }

    /// A clock that moves only when its [`ManualClock`] handle says so; it starts at zero.
    pub fn manual() -> (Self, ManualClock) {
        let now_ms = Arc::new(AtomicU64::new(0));
        (
            Self {
                now_ms: Arc::clone(&now_ms),
            },
            ManualClock { now_ms },
        )
    }

    /// Milliseconds on this clock.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    /// The deadline `ttl` from now, in this clock's milliseconds (rounded up, saturating).
    #[cfg(test)]
    pub(crate) fn deadline(&self, ttl: Duration) -> u64 {
        self.deadline_in(millis(ttl))
    }

    /// The deadline `ms` milliseconds (from [`millis`]) from now, saturating.
    #[inline]
    pub(crate) fn deadline_in(&self, ms: u64) -> u64 {
        self.now_ms().saturating_add(ms)
    }
}

/// `ttl` in whole milliseconds, rounded up and saturating.
pub(crate) fn millis(ttl: Duration) -> u64 {
    // u64 arithmetic: a u128 division costs more than the rest of an insert's bookkeeping.
    ttl.as_secs()
        .saturating_mul(1_000)
        .saturating_add(u64::from(ttl.subsec_nanos().div_ceil(1_000_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_whole_milliseconds_and_saturate() {
        let (clock, hand) = Clock::manual();
        hand.advance(Duration::from_millis(5));
        assert_eq!(clock.deadline(Duration::ZERO), 5);
        assert_eq!(clock.deadline(Duration::from_nanos(1)), 6);
        assert_eq!(clock.deadline(Duration::from_micros(1_500)), 7);
        assert_eq!(clock.deadline(Duration::from_millis(2)), 7);
        assert_eq!(clock.deadline(Duration::new(3, 999_999_999)), 4_005);
        assert_eq!(clock.deadline(Duration::MAX), u64::MAX);
    }
}
