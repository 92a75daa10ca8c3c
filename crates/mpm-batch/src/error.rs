//! The crate's errors: [`Error`] for building and driving a [`Batcher`](crate::Batcher),
//! [`JobError`] for one job of [`run_bounded`](crate::run_bounded), [`PushError`] for an item a
//! batcher did not accept, and [`ConsumerError`] for a batch its consumer did not take.

use std::any::Any;

/// What went wrong building or driving a [`Batcher`](crate::Batcher).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `max_delay` was zero: a batch must be allowed some time to fill.
    #[error("max_delay must be greater than zero")]
    ZeroDelay,
    /// `build` was called outside a Tokio runtime, so there is nowhere to run the consumer.
    #[error("a Batcher must be built inside a Tokio runtime: {0}")]
    NoRuntime(#[from] tokio::runtime::TryCurrentError),
    /// The batcher's series could not be registered.
    #[error("registering the batcher's metrics as {name:?} failed: {source}")]
    Metrics {
        /// The name the batcher was given.
        name: String,
        /// What the registry said.
        #[source]
        source: mpm_metrics::Error,
    },
    /// The batcher's worker task is gone (its runtime shut down) before it delivered what
    /// was asked; the items it still held are counted as lost.
    #[error("the batcher's worker task is gone")]
    WorkerGone,
}

/// Why one job of [`run_bounded`](crate::run_bounded) (or one batch of a
/// [`BatchProcessor`](crate::BatchProcessor)) has no result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError<E> {
    /// The job returned this error.
    #[error("job failed: {0}")]
    Failed(E),
    /// The job (or the closure that made it) panicked with this message.
    #[error("job panicked: {0}")]
    Panicked(String),
    /// A batch job returned a different number of results than it was given items.
    #[error("batch of {expected} items returned {actual} results")]
    ResultCount {
        /// Items in the batch.
        expected: usize,
        /// Results returned.
        actual: usize,
    },
}

impl<E> JobError<E> {
    /// The job's own error, if it returned one.
    pub fn failed(&self) -> Option<&E> {
        match self {
            JobError::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The panic message, if the job panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JobError::Panicked(m) => Some(m),
            _ => None,
        }
    }
}

/// An item a [`Batcher`](crate::Batcher) did not accept, handed back with the reason.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError<T> {
    /// The queue is full and the policy is [`Overflow::RejectNewest`](crate::Overflow), or
    /// `try_push` found no room under [`Overflow::Wait`](crate::Overflow).
    #[error("the batcher's queue is full")]
    Full(T),
    /// The batcher is shut down.
    #[error("the batcher is shut down")]
    Closed(T),
}

impl<T> PushError<T> {
    /// The item that was not accepted.
    pub fn into_item(self) -> T {
        match self {
            PushError::Full(t) | PushError::Closed(t) => t,
        }
    }
}

/// Why a batcher's consumer did not take a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// The consumer returned this error.
    #[error("consumer failed: {0}")]
    Failed(Box<dyn std::error::Error + Send + Sync>),
    /// The consumer panicked with this message.
    #[error("consumer panicked: {0}")]
    Panicked(String),
}

/// The message of a panic payload: the `&str` or `String` given to `panic!`, else a
/// placeholder.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
