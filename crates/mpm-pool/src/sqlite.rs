//! A [`Manager`] for SQLite connections on `rusqlite` (with its bundled SQLite), behind the
//! `sqlite` feature.
//!
//! SQLite has no server: a "connection" is an open database file. Pooling still pays, because
//! opening a file, reading its schema and preparing statements costs far more than reusing a
//! connection that has them cached (`Connection::prepare_cached`). Each connection is opened in
//! WAL mode with `synchronous=NORMAL` (durable at checkpoints, crash-safe, and readers never
//! block the writer) and a busy timeout, so that pooled connections writing at once wait for
//! each other instead of failing with `SQLITE_BUSY`.
//!
//! rusqlite's calls block; they are short for the small statements a pool serves. Run long
//! queries through `tokio::task::block_in_place` or `spawn_blocking`.
//!
//! ```
//! use mpm_pool::Pool;
//! use mpm_pool::sqlite::SqliteManager;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = std::env::temp_dir().join(format!("mpm-pool-sqlite-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let pool = Pool::builder(SqliteManager::new(dir.join("app.db"))).max_size(std::num::NonZeroUsize::new(4).unwrap()).build().await?;
//! let conn = pool.get().await?;
//! conn.execute_batch("CREATE TABLE IF NOT EXISTS t (x INTEGER)")?;
//! conn.execute("INSERT INTO t (x) VALUES (?1)", [7])?;
//! let x: i64 = conn.query_row("SELECT x FROM t", [], |r| r.get(0))?;
//! assert_eq!(x, 7);
//! # drop(conn);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use rusqlite;
use rusqlite::{Connection, OpenFlags};

use crate::Manager;

/// Opens connections to one SQLite database file.
#[derive(Clone, Debug)]
pub struct SqliteManager {
    path: PathBuf,
    flags: OpenFlags,
    busy_timeout: Duration,
}

impl SqliteManager {
    /// Connections to the database in `path`, created if missing.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            flags: OpenFlags::default(),
            busy_timeout: Duration::from_secs(5),
        }
    }

    /// Opens with these flags instead of read-write-create.
    pub fn flags(mut self, flags: OpenFlags) -> Self {
        self.flags = flags;
        self
    }

    /// How long a statement waits for another connection's write lock before failing with
    /// `SQLITE_BUSY` (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Manager for SqliteManager {
    type Object = Connection;
    type Error = rusqlite::Error;

    async fn create(&self) -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open_with_flags(&self.path, self.flags)?;
        conn.busy_timeout(self.busy_timeout)?;
        if !self.flags.contains(OpenFlags::SQLITE_OPEN_READ_ONLY) {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        Ok(conn)
    }

    async fn validate(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        conn.query_row("SELECT 1", [], |_| Ok(()))
    }

    fn is_broken(&self, conn: &mut Connection) -> bool {
        // A connection left inside a transaction (a caller that began one and gave the
        // connection back without finishing) must not be lent again.
        !conn.is_autocommit()
    }
}
