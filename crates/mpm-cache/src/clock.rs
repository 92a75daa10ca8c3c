//! Coarse clocks for TTL checks: reading one costs one atomic load, never a system call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mpm_metrics::heartbeat::{self, Beat};

/// How often the coarse time moves: the process's heartbeat
/// ([`mpm_metrics::heartbeat::BEAT`]), shared with mpm-pool's clocks.
pub const TICK: Duration = heartbeat::BEAT;

/// The latest reading of any clock, in milliseconds (2^60 - 1, some 36 million years): a
/// [`ManualClock`] moved further stops there. The L1 keeps a deadline in 60 bits of a word and
/// takes the largest for "never", so no clock ever passes it.
pub(crate) const MAX_MS: u64 = u64::MAX >> 4;

/// A millisecond clock read with one relaxed atomic load.
///
/// [`Clock::coarse`] (the default) reads the process's heartbeat
/// ([`mpm_metrics::heartbeat`]): one background thread, shared with mpm-pool, that stores the
/// milliseconds since it started every [`TICK`] while a coarse clock (or a pool's) lives, and
/// parks when the last is dropped. A TTL can therefore be honoured up to one tick late, never
/// early. [`Clock::manual`] returns a clock and a [`ManualClock`] handle that moves it, for
/// deterministic tests.
#[derive(Clone, Debug)]
pub struct Clock {
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    /// The heartbeat, which beats while this registration (shared by the clock's clones)
    /// lives; `None` where no thread could start (the clock then stands still: entries expire
    /// late, at the next successful read, the safe direction for a cache of derived data).
    Coarse { _beat: Arc<Option<Beat>> },
    /// A [`ManualClock`]'s time.
    Manual(Arc<AtomicU64>),
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

impl Default for Clock {
    fn default() -> Self {
        Self::coarse()
    }
}

impl Clock {
    /// The process-wide coarse clock (starts the heartbeat's thread, or wakes it, if it does
    /// not beat; it beats while this clock or a clone of it lives).
    pub fn coarse() -> Self {
        Self {
            source: Source::Coarse {
                _beat: Arc::new(Beat::start()),
            },
        }
    }

    /// A clock that moves only when its [`ManualClock`] handle says so; it starts at zero.
    pub fn manual() -> (Self, ManualClock) {
        let now_ms = Arc::new(AtomicU64::new(0));
        (
            Self {
                source: Source::Manual(Arc::clone(&now_ms)),
            },
            ManualClock { now_ms },
        )
    }

    /// Milliseconds on this clock.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        match &self.source {
            Source::Coarse { .. } => heartbeat::now_ms(),
            Source::Manual(now_ms) => now_ms.load(Ordering::Relaxed),
        }
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

    #[test]
    fn a_coarse_clock_moves_while_it_lives() {
        let clock = Clock::coarse();
        let start = clock.now_ms();
        let until = std::time::Instant::now() + Duration::from_secs(10);
        // A bounded wait for the value to move (the heartbeat beats every TICK).
        while clock.now_ms() <= start {
            assert!(
                std::time::Instant::now() < until,
                "the coarse clock stood still"
            );
            std::thread::sleep(TICK);
        }
    }
}
