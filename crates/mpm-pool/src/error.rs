//! The pool's error type.

use std::fmt;
use std::time::Duration;

/// The step of an acquire that ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Waiting for a free place in the pool (the whole acquire timeout).
    Acquire,
    /// [`Manager::create`](crate::Manager::create).
    Create,
    /// [`Manager::validate`](crate::Manager::validate).
    Validate,
    /// [`Manager::recycle`](crate::Manager::recycle).
    Recycle,
}

impl Stage {
    /// The stage's name in lower case, as used in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Acquire => "acquire",
            Stage::Create => "create",
            Stage::Validate => "validate",
            Stage::Recycle => "recycle",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why getting an object from a pool failed. `E` is the manager's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E> {
    /// The acquire timeout passed before an object was ready; `stage` is the step that was
    /// running.
    #[error("no pooled object within {timeout:?} (timed out during {stage})")]
    Timeout {
        /// The step that was running when time ran out.
        stage: Stage,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// Creating an object failed and the acquire deadline left no time to retry (or no
    /// acquire timeout is set, so there is no retry).
    #[error("creating a pooled object failed: {0}")]
    Create(#[source] E),
    /// Creating an object timed out and the acquire deadline left no time to retry.
    #[error("creating a pooled object took longer than {0:?}")]
    CreateTimeout(Duration),
    /// The pool was closed.
    #[error("the pool is closed")]
    Closed,
    /// A method of the [`Manager`](crate::Manager) panicked. The object it was called on
    /// (if any) was dropped and its place in the pool freed; the pool goes on working.
    #[error("the pool's manager panicked in `{method}`: {message}")]
    ManagerPanicked {
        /// The method: `create`, `validate`, `recycle` or `is_broken`.
        method: &'static str,
        /// The panic's message.
        message: String,
    },
    /// The pool's circuit breaker refused to create: creation failed repeatedly. An acquire
    /// waits for the breaker's probe within its deadline; this is what it returns when the
    /// deadline came first (or at once, without an acquire timeout).
    #[error("the circuit breaker is {} after repeated creation failures ({})", state.as_str(), match probe_in {
        Some(d) => format!("next probe in {d:?}"),
        None => "a probe is running".to_owned(),
    })]
    CircuitOpen {
        /// Open, or half-open while its probe runs.
        state: crate::BreakerState,
        /// How long until the breaker lets the next probe through; `None` while one runs.
        probe_in: Option<Duration>,
    },
}

impl<E> From<crate::unwind::Panicked> for Error<E> {
    fn from(p: crate::unwind::Panicked) -> Self {
        Error::ManagerPanicked {
            method: p.method,
            message: p.message,
        }
    }
}

impl<E> Error<E> {
    /// The error of an acquire refused by the circuit breaker, as seen at `now`.
    pub(crate) fn circuit_open(
        refused: crate::breaker::Refused,
        now: tokio::time::Instant,
    ) -> Self {
        Error::CircuitOpen {
            state: refused.state,
            probe_in: refused.probe_at.map(|at| at.saturating_duration_since(now)),
        }
    }
}

/// A bad setting in a [`Builder`](crate::Builder).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `min_idle` is larger than `max_size`.
    #[error("min_idle ({min_idle}) is larger than max_size ({max_size})")]
    MinIdleAboveMax {
        /// The requested minimum of idle objects.
        min_idle: usize,
        /// The requested maximum size.
        max_size: usize,
    },
    /// A duration that must be positive is zero.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// `max_size` is larger than the pool supports.
    #[error("max_size ({0}) is larger than the supported maximum")]
    TooLarge(usize),
    /// The maintenance task is on but the pool was built outside a Tokio runtime.
    #[error(
        "the pool's maintenance task needs a Tokio runtime; build the pool inside one or switch maintenance off"
    )]
    NoRuntime,
    /// A metric could not be registered.
    #[error("registering the pool's metrics failed: {0}")]
    Metrics(#[from] mpm_metrics::Error),
}

/// Why building a pool failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError<E> {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Creating the first `min_idle` objects failed.
    #[error("creating the initial idle objects failed: {0}")]
    Initial(#[source] Error<E>),
}
