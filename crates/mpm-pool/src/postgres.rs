//! A [`Manager`] for PostgreSQL on `tokio-postgres` (feature `postgres`).

/// The `tokio-postgres` crate this manager is built on, so that callers use the same version.
pub use tokio_postgres;

use std::fmt;
use std::str::FromStr;

use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, NoTls, Socket};

use crate::manager::Manager;

/// How a [`PgManager`] resets a connection after a use, before it is handed out again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RecycleMethod {
    /// Only checks that the connection is open; no round trip (the default).
    #[default]
    Fast,
    /// Runs an empty query: one round trip proves the connection works.
    Verified,
    /// Runs `DISCARD ALL`: closes cursors, drops temporary tables, resets session settings,
    /// releases advisory locks and deallocates prepared statements.
    Clean,
    /// Runs the given SQL.
    Custom(String),
}

impl RecycleMethod {
    fn sql(&self) -> Option<&str> {
        match self {
            RecycleMethod::Fast => None,
            RecycleMethod::Verified => Some(""),
            RecycleMethod::Clean => Some("DISCARD ALL"),
            RecycleMethod::Custom(sql) => Some(sql),
        }
    }
}

/// The error of a [`PgManager`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The server or the driver reported an error.
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// The connection is closed (the server ended it, or the network did).
    #[error("the PostgreSQL connection is closed")]
    Closed,
    /// `SELECT 1` answered something else.
    #[error("the PostgreSQL health check returned an unexpected answer")]
    UnexpectedAnswer,
}

/// Creates PostgreSQL connections, validates them with `SELECT 1` and resets them by a
/// [`RecycleMethod`]. A connection the server has closed is noticed without a round trip
/// (`Client::is_closed`) on release and before validation.
///
/// ```no_run
/// use mpm_pool::Pool;
/// use mpm_pool::postgres::{PgManager, RecycleMethod};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = PgManager::from_url("postgres://postgres@127.0.0.1:5432/test")?
///     .recycle_method(RecycleMethod::Clean);
/// let pool = Pool::builder(manager).max_size(std::num::NonZeroUsize::new(16).unwrap()).min_idle(2).build().await?;
/// let client = pool.get().await?;
/// let row = client.query_one("SELECT 40 + 2", &[]).await?;
/// assert_eq!(row.get::<_, i32>(0), 42);
/// # Ok(())
/// # }
/// ```
pub struct PgManager<T = NoTls> {
    config: Config,
    tls: T,
    recycle: RecycleMethod,
}

impl<T> fmt::Debug for PgManager<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgManager")
            .field("recycle", &self.recycle)
            .finish_non_exhaustive()
    }
}

impl PgManager<NoTls> {
    /// A manager for `url` (a `postgres://` URL or a `key=value` string), without TLS.
    pub fn from_url(url: &str) -> Result<Self, PgError> {
        Ok(PgManager::new(Config::from_str(url)?, NoTls))
    }
}

impl<T> PgManager<T> {
    /// A manager for `config` that connects through `tls`.
    pub fn new(config: Config, tls: T) -> Self {
        PgManager {
            config,
            tls,
            recycle: RecycleMethod::default(),
        }
    }

    /// Sets how connections are reset after a use. (Named so that it does not shadow
    /// [`Manager::recycle`].)
    pub fn recycle_method(mut self, method: RecycleMethod) -> Self {
        self.recycle = method;
        self
    }
}

impl<T> Manager for PgManager<T>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + Sync + 'static,
    T::TlsConnect: Send + Sync,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    type Object = Client;
    type Error = PgError;

    async fn create(&self) -> Result<Client, PgError> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a pooled PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    async fn validate(&self, client: &mut Client) -> Result<(), PgError> {
        if client.is_closed() {
            return Err(PgError::Closed);
        }
        let rows = client.simple_query("SELECT 1").await?;
        let one = rows.iter().any(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0) == Some("1"),
            _ => false,
        });
        if one {
            Ok(())
        } else {
            Err(PgError::UnexpectedAnswer)
        }
    }

    async fn recycle(&self, client: &mut Client) -> Result<(), PgError> {
        if client.is_closed() {
            return Err(PgError::Closed);
        }
        if let Some(sql) = self.recycle.sql() {
            client.simple_query(sql).await?;
        }
        Ok(())
    }

    fn is_broken(&self, client: &mut Client) -> bool {
        client.is_closed()
    }
}
