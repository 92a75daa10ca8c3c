//! The pool's statistics: a [`Status`] snapshot and why objects leave ([`CloseReason`]).

use crate::breaker::BreakerState;

/// Why an object left the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The manager's [`is_broken`](crate::Manager::is_broken) said so on release.
    Broken,
    /// The user called [`Object::discard`](crate::Object::discard).
    Discarded,
    /// Validation or recycling failed.
    Invalid,
    /// Validation or recycling timed out.
    Timeout,
    /// The object reached its maximum lifetime.
    Lifetime,
    /// The object was idle longer than the idle timeout.
    Idle,
    /// The object was taken out of the pool with [`Object::take`](crate::Object::take).
    Taken,
    /// A task was cancelled while the object was being checked.
    Cancelled,
    /// The pool shrank or closed.
    Shutdown,
    /// The object came back after leak detection had reported it (held past the threshold):
    /// whatever it was left in is suspect, so it is closed rather than lent again.
    Leaked,
    /// A method of the manager panicked on the object (or on its check).
    Panicked,
    /// A [`KeyedPool`](crate::keyed::KeyedPool) closed an idle object of one key to make room
    /// for another at its total cap.
    Evicted,
}

impl CloseReason {
    /// The reasons a [`Pool`](crate::Pool) records, in declaration order.
    pub(crate) const ALL: [CloseReason; 11] = [
        CloseReason::Broken,
        CloseReason::Discarded,
        CloseReason::Invalid,
        CloseReason::Timeout,
        CloseReason::Lifetime,
        CloseReason::Idle,
        CloseReason::Taken,
        CloseReason::Cancelled,
        CloseReason::Shutdown,
        CloseReason::Leaked,
        CloseReason::Panicked,
    ];

    /// The reason in lower case, as used in the `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Broken => "broken",
            CloseReason::Discarded => "discarded",
            CloseReason::Invalid => "invalid",
            CloseReason::Timeout => "timeout",
            CloseReason::Lifetime => "lifetime",
            CloseReason::Idle => "idle",
            CloseReason::Taken => "taken",
            CloseReason::Cancelled => "cancelled",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Leaked => "leaked",
            CloseReason::Panicked => "panicked",
            CloseReason::Evicted => "evicted",
        }
    }
}

/// A snapshot of a pool's state, from [`Pool::status`](crate::Pool::status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// Objects in the pool: idle, lent out and being created.
    pub size: usize,
    /// Idle objects.
    pub idle: usize,
    /// Objects lent out (including those being validated or recycled for a caller).
    pub in_use: usize,
    /// Objects being created.
    pub creating: usize,
    /// Tasks waiting for a free place.
    pub waiting: usize,
    /// The maximum size.
    pub max_size: usize,
    /// Places free now: how many acquires could start without waiting (on an idle object
    /// or on room to create one). With nothing lent out or being made it equals `max_size`;
    /// a place that never came back shows as a shortfall, without trying to acquire. 0 while
    /// callers wait.
    pub available: usize,
    /// The circuit breaker's state, if the pool has one.
    pub breaker: Option<BreakerState>,
}
