//! The crate's error type.

/// What went wrong in a call to this crate. Each variant names the input at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A metric name that Prometheus would refuse.
    #[error(
        "invalid metric name {name:?}: {reason} (allowed: a letter, '_' or ':' first, then letters, digits, '_' or ':')"
    )]
    InvalidMetricName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A label name that Prometheus would refuse.
    #[error(
        "invalid label name {label:?} on metric {metric:?}: {reason} (allowed: a letter or '_' first, then letters, digits or '_', not starting with \"__\")"
    )]
    InvalidLabelName {
        /// The metric the label was given for.
        metric: String,
        /// The label name as given.
        label: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same metric already exists with another kind.
    #[error(
        "metric {name:?} is already registered as a {existing}, so it cannot be used as a {requested}"
    )]
    KindMismatch {
        /// The metric name.
        name: String,
        /// The kind it was registered as.
        existing: &'static str,
        /// The kind that was asked for.
        requested: &'static str,
    },
    /// A NaN or infinite value was offered where only finite values are accepted.
    #[error("value {value} for metric {name:?} is not finite; it was not recorded")]
    NonFinite {
        /// The metric name.
        name: String,
        /// The refused value.
        value: f64,
    },
    /// `stop_timer` was given an id that is not running (already stopped or never started).
    #[error("timer {id} is not running (it was already stopped, or never started)")]
    UnknownTimer {
        /// The id as given.
        id: u64,
    },
    /// A budget file or budget entry could not be read.
    #[error("invalid budget: {0}")]
    InvalidBudget(String),
    /// A histogram bucket layout that cannot be exposed.
    #[error("invalid bucket layout: {0}")]
    InvalidBuckets(&'static str),
    /// A component of this kind and instance name already reports into the registry, and
    /// neither registration asked to share it (see [`Registry::shared_scope`]).
    ///
    /// [`Registry::shared_scope`]: crate::Registry::shared_scope
    #[error(
        "a {component} named {instance:?} is already registered in this registry; give it another name, or ask for a shared scope on both sides"
    )]
    AlreadyRegistered {
        /// The component kind, such as `cache` or `pool`.
        component: String,
        /// The instance name.
        instance: String,
    },
}
