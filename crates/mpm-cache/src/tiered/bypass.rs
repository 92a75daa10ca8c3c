//! Tiers that fail are bypassed, not waited on: after a number of consecutive failed (or
//! slow) calls the cache stops calling the tier below its L1 for a cool-down, then lets one
//! call through as a probe; a probe that succeeds puts the tier back in service, one that fails
//! starts another cool-down.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use mpm_metrics::Counter;

use crate::clock::Clock;

/// When a [`TieredCache`](crate::TieredCache) stops calling the tier below its L1 (its L2)
/// and when it tries again. Given to
/// [`TieredCacheBuilder::l2_bypass`](crate::TieredCacheBuilder::l2_bypass).
///
/// A call *fails* when it returns an error or panics, or takes longer than
/// [`slow_call`](Self::slow_call) (except `flush` and `save_heat`, which may take an `fsync`).
/// While a call has been running for longer than `slow_call` and none has ended, the tier is
/// *stuck*: other callers skip it as if bypassed, without waiting for that call. After
/// [`after`](Self::after) failures in a row the tier is *bypassed* for
/// [`cool_down`](Self::cool_down): no caller calls it, reads are misses (the loader answers),
/// writes and removals are recorded as removals the tier still owes (so nothing it holds can
/// be served stale later), and the calls that asked for a write or removal get
/// [`Error::TierBypassed`](crate::Error::TierBypassed). Then the next call is a probe: if it
/// works, the tier is back in service; if not, another cool-down starts.
///
/// ```
/// use mpm_cache::BypassPolicy;
/// use std::num::NonZeroU32;
/// use std::time::Duration;
///
/// let policy = BypassPolicy::default()
///     .after(NonZeroU32::new(3).unwrap())
///     .cool_down(Duration::from_secs(5))
///     .slow_call(Duration::from_millis(50));
/// assert_eq!(policy.cool_down_time(), Duration::from_secs(5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BypassPolicy {
    after: NonZeroU32,
    cool_down: Duration,
    slow_call: Duration,
}

impl Default for BypassPolicy {
    /// Bypass after 5 failures in a row, for 1 second; a call slower than 250 ms fails.
    fn default() -> Self {
        Self {
            after: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            cool_down: Duration::from_secs(1),
            slow_call: Duration::from_millis(250),
        }
    }
}

impl BypassPolicy {
    /// Failures in a row that start a bypass (default 5).
    pub fn after(mut self, failures: NonZeroU32) -> Self {
        self.after = failures;
        self
    }

    /// How long a bypass lasts before a probe (default 1 s), on the L1's
    /// [`Clock`].
    pub fn cool_down(mut self, d: Duration) -> Self {
        self.cool_down = d;
        self
    }

    /// A call that takes longer than this counts as a failure even if it succeeds, and while
    /// one has been running this long other callers skip the tier (default 250 ms), on the
    /// L1's [`Clock`].
    pub fn slow_call(mut self, d: Duration) -> Self {
        self.slow_call = d;
        self
    }

    /// The failures in a row that start a bypass.
    pub fn failures(&self) -> NonZeroU32 {
        self.after
    }

    /// How long a bypass lasts.
    pub fn cool_down_time(&self) -> Duration {
        self.cool_down
    }

    /// The time beyond which a call counts as failed.
    pub fn slow_call_time(&self) -> Duration {
        self.slow_call
    }
}

/// `until` while a probe runs.
const PROBING: u64 = u64::MAX;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What a caller may do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Admit {
    /// Call the tier.
    Call,
    /// Call the tier: this call decides whether the bypass ends.
    Probe,
    /// Do not call the tier; the next probe is due in this long.
    Skip(Duration),
}

/// The state of one tier: consecutive failures, and the bypass deadline.
pub(super) struct Bypass {
    policy: BypassPolicy,
    clock: Clock,
    failures: AtomicU32,
    /// 0 while the tier is in service; [`PROBING`] while a probe runs; else the clock's
    /// millisecond until which the tier is bypassed.
    until: AtomicU64,
    /// Calls of the tier running now.
    in_flight: AtomicU32,
    /// The clock's millisecond when, with calls running, the last one started from idle or
    /// any one ended: while none has ended for longer than `slow_call`, the tier is stuck and
    /// callers skip it without waiting for the stuck call to come back.
    progress_ms: AtomicU64,
    /// Bypasses started.
    pub(super) started: Counter,
}

/// A call of the tier under way: [`Bypass::finish`] ends it.
pub(super) struct Call {
    admitted: Admit,
    started_ms: u64,
    timed: bool,
}

impl Bypass {
    pub(super) fn new(policy: BypassPolicy, clock: Clock, started: Counter) -> Self {
        Self {
            policy,
            clock,
            failures: AtomicU32::new(0),
            until: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            progress_ms: AtomicU64::new(0),
            started,
        }
    }

    /// Whether the tier is bypassed now (or being probed).
    pub(super) fn active(&self) -> bool {
        self.until.load(Ordering::Acquire) != 0
    }

    /// Starts a call of the tier if one may go now (see [`admit`](Self::admit)); `Err` says
    /// when the next probe is due. A `timed` call fails when slow, and makes the tier stuck
    /// while it runs too long; an untimed one (a flush, which may wait for the disk) does
    /// neither.
    pub(super) fn start(&self, timed: bool) -> Result<Call, Duration> {
        let admitted = self.admit();
        if let Admit::Skip(retry_in) = admitted {
            return Err(retry_in);
        }
        let now = self.clock.now_ms();
        if timed && self.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
            self.progress_ms.store(now, Ordering::Release);
        }
        Ok(Call {
            admitted,
            started_ms: now,
            timed,
        })
    }

    /// Ends `call`: `ok` unless it failed; a timed call slower than the policy allows fails
    /// too.
    pub(super) fn finish(&self, call: Call, ok: bool) {
        let mut slow = false;
        if call.timed {
            let now = self.clock.now_ms();
            self.progress_ms.store(now, Ordering::Release);
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            slow = now.saturating_sub(call.started_ms) > millis(self.policy.slow_call);
        }
        self.record(call.admitted, ok && !slow);
    }

    /// Whether a call has been running for longer than `slow_call` with no call ending.
    fn stuck(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
            && self
                .clock
                .now_ms()
                .saturating_sub(self.progress_ms.load(Ordering::Acquire))
                > millis(self.policy.slow_call)
    }

    /// Whether a call may go to the tier now; the first caller after a cool-down becomes the
    /// probe, and callers meanwhile skip; so do callers while a call is stuck.
    pub(super) fn admit(&self) -> Admit {
        let until = self.until.load(Ordering::Acquire);
        if until == 0 {
            if self.stuck() {
                return Admit::Skip(self.policy.slow_call);
            }
            return Admit::Call;
        }
        let now = self.clock.now_ms();
        if until == PROBING {
            return Admit::Skip(Duration::ZERO);
        }
        if now < until {
            return Admit::Skip(Duration::from_millis(until - now));
        }
        match self
            .until
            .compare_exchange(until, PROBING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Admit::Probe,
            Err(_) => Admit::Skip(Duration::ZERO),
        }
    }

    /// Records how an admitted call went.
    pub(super) fn record(&self, admitted: Admit, ok: bool) {
        if ok {
            self.failures.store(0, Ordering::Relaxed);
            if admitted == Admit::Probe {
                self.until.store(0, Ordering::Release);
            }
            return;
        }
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if admitted == Admit::Probe || failures >= self.policy.after.get() {
            let ms = millis(self.policy.cool_down);
            let until = self.clock.now_ms().saturating_add(ms).clamp(1, PROBING - 1);
            let previous = self.until.swap(until, Ordering::AcqRel);
            if previous == 0 {
                self.started.inc();
            }
            self.failures.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bypass(after: u32) -> (Bypass, crate::ManualClock) {
        let (clock, hand) = Clock::manual();
        let policy = BypassPolicy::default()
            .after(NonZeroU32::new(after).unwrap())
            .cool_down(Duration::from_secs(1));
        (Bypass::new(policy, clock, Counter::new()), hand)
    }

    #[test]
    fn failures_in_a_row_start_a_bypass_and_a_success_resets_the_count() {
        let (b, _) = bypass(3);
        b.record(Admit::Call, false);
        b.record(Admit::Call, false);
        b.record(Admit::Call, true);
        b.record(Admit::Call, false);
        b.record(Admit::Call, false);
        assert_eq!(b.admit(), Admit::Call, "never three in a row");
        b.record(Admit::Call, false);
        assert_eq!(b.admit(), Admit::Skip(Duration::from_secs(1)));
        assert_eq!(b.started.get(), 1);
    }

    #[test]
    fn one_probe_after_the_cool_down_decides() {
        let (b, hand) = bypass(1);
        b.record(Admit::Call, false);
        hand.advance(Duration::from_millis(999));
        assert!(matches!(b.admit(), Admit::Skip(_)));
        hand.advance(Duration::from_millis(1));
        assert_eq!(b.admit(), Admit::Probe);
        assert_eq!(
            b.admit(),
            Admit::Skip(Duration::ZERO),
            "one probe at a time"
        );
        b.record(Admit::Probe, false);
        assert_eq!(
            b.admit(),
            Admit::Skip(Duration::from_secs(1)),
            "bypassed again"
        );
        hand.advance(Duration::from_secs(1));
        assert_eq!(b.admit(), Admit::Probe);
        b.record(Admit::Probe, true);
        assert_eq!(b.admit(), Admit::Call);
        assert!(!b.active());
        assert_eq!(b.started.get(), 1, "one bypass, probed twice");
    }
}
