//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in `mpm-cache`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range.
    #[error("invalid cache configuration: {what}")]
    InvalidConfig {
        /// What was wrong.
        what: String,
    },
    /// A glob pattern could not be parsed.
    #[error("invalid glob pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// Why it was refused.
        reason: String,
    },
    /// The loader given to `get_or_load` failed; every waiter receives this error.
    #[error("loading key {key:?} failed: {message}")]
    Load {
        /// The key being loaded.
        key: String,
        /// The loader's error, rendered.
        message: String,
        /// The loader's error itself ([`LoadFailure::downcast`](crate::LoadFailure::downcast) gives it back typed).
        failure: crate::LoadFailure,
    },
    /// The loader given to `get_or_load` panicked or was cancelled before producing a value.
    #[error("loading key {key:?} was abandoned (the loader panicked or was cancelled)")]
    LoadAbandoned {
        /// The key being loaded.
        key: String,
    },
    /// A disk-tier file operation failed.
    #[error("disk tier {op} failed on {path}: {source}")]
    Io {
        /// What was being done (`"write"`, `"read"`, `"create directory"`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A tier's store refused an operation: the disk tier's (for example a full disk or a
    /// read-only directory) or a remote tier's (a server's error or a timeout).
    #[error("tier {op} failed on {path}: {message}")]
    Storage {
        /// What was being done.
        op: &'static str,
        /// The store's file, or where a remote tier's server is.
        path: PathBuf,
        /// The store's error, rendered.
        message: String,
    },
    /// The disk tier's store was damaged (found at open or by a later call); it was moved
    /// aside and replaced by an empty store.
    #[error("disk tier store {path} was damaged and moved aside: {message}")]
    Corrupt {
        /// The store's file.
        path: PathBuf,
        /// What was found.
        message: String,
    },
    /// A value could not be serialized for the disk tier.
    #[error("could not serialize the value for key {key:?}: {message}")]
    Serialize {
        /// The key whose value failed.
        key: String,
        /// The serializer's message.
        message: String,
    },
    /// An event published on the [`InvalidationBus`](crate::InvalidationBus) lacks a field its
    /// pattern template names.
    #[error("event {event:?} has no field {field:?} for pattern template {template:?}")]
    MissingEventField {
        /// The event name.
        event: String,
        /// The missing field.
        field: String,
        /// The template that names it.
        template: String,
    },
    /// The tier below a [`TieredCache`](crate::TieredCache)'s L1 is bypassed after failing
    /// (see [`BypassPolicy`](crate::BypassPolicy)): the call was not made. A removal is
    /// recorded and still holds (see the crate docs, "When the L2 fails").
    #[error("the tier below the L1 is bypassed after failing; next probe in {retry_in:?}")]
    TierBypassed {
        /// How long until the next probe may run.
        retry_in: std::time::Duration,
    },
    /// A call into a [`Tier`](crate::Tier) panicked; the cache carries on as for an error.
    #[error("the tier's {op} panicked: {message}")]
    TierPanicked {
        /// The operation (`"get"`, `"put"`, `"remove"`, `"flush"`).
        op: &'static str,
        /// The panic's message, if it was a string.
        message: String,
    },
    /// A metric could not be registered.
    #[error(transparent)]
    Metrics(#[from] mpm_metrics::Error),
}
