//! The deployment database behind an `mpm-pool` pool: embedded SQLite by default, PostgreSQL
//! when asked for.

use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use mpm_core::Mpm;
use mpm_core::pool::Pool;
use mpm_core::pool::postgres::PgManager;
use mpm_core::pool::sqlite::SqliteManager;

use crate::Error;
use crate::deploy::{Deployment, DeploymentLog};

/// The connections of the deployments pool.
const POOL_SIZE: std::num::NonZeroUsize = std::num::NonZeroUsize::MIN.saturating_add(4);

const SQLITE_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY,
    deployment TEXT NOT NULL,
    agent TEXT NOT NULL,
    version TEXT NOT NULL,
    model TEXT NOT NULL,
    path TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    deployed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
)";

/// The deployment records' database: a pool of connections, cheap to clone.
#[derive(Clone)]
pub struct Database {
    backend: Arc<Backend>,
}

enum Backend {
    Sqlite(Pool<SqliteManager>),
    Postgres {
        pool: Pool<PgManager>,
        table: String,
    },
}

impl Database {
    /// PostgreSQL at `postgres_url` if given (a table of its own per run), else SQLite in the
    /// file `sqlite_path`. Either behind a pool of 5 connections that `mpm` builds as `deployments`.
    pub async fn open(
        postgres_url: Option<&str>,
        sqlite_path: &Path,
        mpm: &Mpm,
    ) -> Result<Self, Error> {
        let db = |e: &dyn std::fmt::Display| Error::Database(e.to_string());
        let backend = match postgres_url {
            None => {
                let pool = mpm
                    .pool("deployments", SqliteManager::new(sqlite_path))
                    .max_size(POOL_SIZE)
                    .build()
                    .await
                    .map_err(|e| db(&e))?;
                let conn = pool.get().await.map_err(|e| db(&e))?;
                conn.execute_batch(SQLITE_SCHEMA).map_err(|e| db(&e))?;
                drop(conn);
                Backend::Sqlite(pool)
            }
            Some(url) => {
                let manager = PgManager::from_url(url).map_err(|e| db(&e))?;
                let pool = mpm
                    .pool("deployments", manager)
                    .max_size(POOL_SIZE)
                    .build()
                    .await
                    .map_err(|e| db(&e))?;
                let table = format!("mpm_demo_deployments_{}", std::process::id());
                let conn = pool.get().await.map_err(|e| db(&e))?;
                conn.batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {table} (
                        id BIGSERIAL PRIMARY KEY, deployment TEXT NOT NULL, agent TEXT NOT NULL,
                        version TEXT NOT NULL, model TEXT NOT NULL, path TEXT NOT NULL,
                        bytes BIGINT NOT NULL, deployed_at TIMESTAMPTZ NOT NULL DEFAULT now());
                     TRUNCATE {table}"
                ))
                .await
                .map_err(|e| db(&e))?;
                drop(conn);
                Backend::Postgres { pool, table }
            }
        };
        Ok(Self {
            backend: Arc::new(backend),
        })
    }

    /// Deployments recorded.
    pub async fn count(&self) -> Result<u64, Error> {
        let db = |e: &dyn std::fmt::Display| Error::Database(e.to_string());
        match &*self.backend {
            Backend::Sqlite(pool) => {
                let conn = pool.get().await.map_err(|e| db(&e))?;
                let n: i64 = conn
                    .query_row("SELECT count(*) FROM deployments", [], |r| r.get(0))
                    .map_err(|e| db(&e))?;
                Ok(n as u64)
            }
            Backend::Postgres { pool, table } => {
                let conn = pool.get().await.map_err(|e| db(&e))?;
                let row = conn
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .await
                    .map_err(|e| db(&e))?;
                Ok(row.get::<_, i64>(0) as u64)
            }
        }
    }

    /// The pool's size, connections in use and waiters, for the dashboard.
    pub fn pool_status(&self) -> (u64, u64, u64) {
        let s = match &*self.backend {
            Backend::Sqlite(pool) => pool.status(),
            Backend::Postgres { pool, .. } => pool.status(),
        };
        (s.size as u64, s.in_use as u64, s.waiting as u64)
    }

    /// Which database it is, for the report.
    pub fn kind(&self) -> &'static str {
        match &*self.backend {
            Backend::Sqlite(_) => "SQLite",
            Backend::Postgres { .. } => "PostgreSQL",
        }
    }
}

impl DeploymentLog for Database {
    fn record<'a>(&'a self, d: &'a Deployment) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let db = |e: &dyn std::fmt::Display| Error::Database(format!("{}: {e}", d.agent));
            let path = d.path.display().to_string();
            match &*self.backend {
                Backend::Sqlite(pool) => {
                    let conn = pool.get().await.map_err(|e| db(&e))?;
                    conn.prepare_cached(
                        "INSERT INTO deployments (deployment, agent, version, model, path, bytes)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .and_then(|mut s| {
                        s.execute(mpm_core::pool::sqlite::rusqlite::params![
                            d.id,
                            d.agent,
                            d.version,
                            d.model,
                            path,
                            d.bytes as i64
                        ])
                    })
                    .map_err(|e| db(&e))?;
                }
                Backend::Postgres { pool, table } => {
                    let conn = pool.get().await.map_err(|e| db(&e))?;
                    conn.execute(
                        &format!(
                            "INSERT INTO {table} (deployment, agent, version, model, path, bytes)
                             VALUES ($1, $2, $3, $4, $5, $6)"
                        ),
                        &[
                            &d.id,
                            &d.agent,
                            &d.version,
                            &d.model,
                            &path,
                            &(d.bytes as i64),
                        ],
                    )
                    .await
                    .map_err(|e| db(&e))?;
                }
            }
            Ok(())
        })
    }
}
