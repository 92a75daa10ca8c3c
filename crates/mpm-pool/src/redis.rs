//! A [`Manager`] for Redis on the `redis` crate (feature `redis`), which is re-exported here.

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Client, Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value};

use crate::manager::Manager;

/// The `redis` crate this manager is built on, so that callers use the same version.
pub use redis;

/// Creates multiplexed Redis connections, validates them with `PING`, and never hands out
/// again a connection that returned an I/O error.
///
/// ```no_run
/// use mpm_pool::Pool;
/// use mpm_pool::redis::RedisManager;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(RedisManager::new("redis://127.0.0.1:6379")?)
///     .max_size(std::num::NonZeroUsize::new(8).unwrap())
///     .build()
///     .await?;
/// let mut conn = pool.get().await?;
/// let () = redis::cmd("SET").arg("greeting").arg("hello").query_async(&mut *conn).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisManager {
    client: Client,
    name: Option<String>,
}

impl RedisManager {
    /// A manager for `info` (a `redis://` URL or connection info).
    pub fn new(info: impl IntoConnectionInfo) -> Result<Self, RedisError> {
        Ok(RedisManager::from_client(Client::open(info)?))
    }

    /// A manager on an existing client.
    pub fn from_client(client: Client) -> Self {
        RedisManager { client, name: None }
    }

    /// Names every connection (`CLIENT SETNAME`), so that the server's `CLIENT LIST` shows
    /// which connections are the pool's.
    #[must_use]
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// A pooled Redis connection: a [`MultiplexedConnection`] that remembers whether a command
/// on it failed in a way that leaves the connection unusable (an I/O error, a dropped
/// connection). The pool closes such a connection when it comes back, so the caller need not
/// [`discard`](crate::Object::discard) it. Use it wherever the `redis` crate takes a
/// connection (`query_async(&mut *conn)`, `AsyncCommands`).
#[derive(Clone)]
pub struct RedisConnection {
    conn: MultiplexedConnection,
    broken: bool,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// Whether a command on this connection failed with an error that breaks the connection.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    fn note<T>(&mut self, result: &Result<T, RedisError>) {
        if let Err(e) = result
            && (e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error())
        {
            self.broken = true;
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.conn.req_packed_command(cmd).await;
            self.note(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self.conn.req_packed_commands(pipeline, offset, count).await;
            self.note(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

impl Manager for RedisManager {
    type Object = RedisConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<RedisConnection, RedisError> {
        let mut conn = RedisConnection {
            conn: self.client.get_multiplexed_async_connection().await?,
            broken: false,
        };
        if let Some(name) = &self.name {
            let () = redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(name)
                .query_async(&mut conn)
                .await?;
        }
        Ok(conn)
    }

    async fn validate(&self, conn: &mut RedisConnection) -> Result<(), RedisError> {
        let pong: String = redis::cmd("PING").query_async(conn).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "unexpected answer to PING",
                pong,
            )))
        }
    }

    fn is_broken(&self, conn: &mut RedisConnection) -> bool {
        conn.broken
    }
}
