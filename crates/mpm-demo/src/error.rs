//! The demo's error type.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What can go wrong in a demo run; each variant names what failed and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An agent template is invalid.
    #[error("agent template {path}: {why}")]
    Template {
        /// The template file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A WebSocket client of the measurement failed.
    #[error("WebSocket client: {0}")]
    Client(String),
    /// The service process could not be started.
    #[error("cannot start {exe}: {source}")]
    Spawn {
        /// The program.
        exe: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The service process misbehaved.
    #[error("service process: {0}")]
    Child(String),
    /// Registering or checking metrics failed.
    #[error(transparent)]
    Metrics(#[from] mpm_core::metrics::Error),
    /// A cache operation failed.
    #[error("cache: {0}")]
    Cache(String),
    /// A pool or database operation failed.
    #[error("database: {0}")]
    Database(String),
    /// Optimizing a memory file failed.
    #[error("memory file: {0}")]
    Memory(String),
    /// The Redis server of `--redis` cannot be used.
    #[error("Redis at {url}: {why}")]
    Redis {
        /// The server's URL (a password in it shown as `***`).
        url: String,
        /// What went wrong.
        why: String,
    },
    /// A saved report could not be read.
    #[error("saved report: {0}")]
    Report(String),
    /// A batch of work failed.
    #[error("batch: {0}")]
    Batch(String),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
