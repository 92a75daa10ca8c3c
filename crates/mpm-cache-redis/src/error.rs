//! The crate's error type: what can go wrong when building the Redis tier or bus, or when
//! publishing an invalidation. The tier's own calls return [`mpm_cache::Error`], as the
//! [`Tier`](mpm_cache::Tier) trait says.

/// Everything that can go wrong in `mpm-cache-redis` outside a tier call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Redis URL could not be parsed.
    #[error("invalid Redis URL: {source}")]
    Url {
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {what}")]
    InvalidConfig {
        /// What was wrong.
        what: String,
    },
    /// The background thread that drives the Redis connections could not be started.
    #[error("could not start the Redis runtime thread: {source}")]
    Runtime {
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Redis did not answer within the timeout, or the connection is known to be down.
    #[error("Redis {op} did not answer within {timeout:?}")]
    Timeout {
        /// What was being done.
        op: &'static str,
        /// The bound it was given.
        timeout: std::time::Duration,
    },
    /// Redis answered with an error, or the connection failed.
    #[error("Redis {op} failed: {source}")]
    Redis {
        /// What was being done.
        op: &'static str,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// A metric could not be registered.
    #[error(transparent)]
    Metrics(#[from] mpm_metrics::Error),
}
