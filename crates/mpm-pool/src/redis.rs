//! A [`Manager`] for Redis on the `redis` crate (feature `redis`).

use redis::aio::MultiplexedConnection;
use redis::{Client, IntoConnectionInfo, RedisError};

use crate::manager::Manager;

/// Creates multiplexed Redis connections and validates them with `PING`.
///
/// ```no_run
/// use mpm_pool::Pool;
/// use mpm_pool::redis::RedisManager;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(RedisManager::new("redis://127.0.0.1:6379")?)
///     .max_size(8)
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
}

impl RedisManager {
    /// A manager for `info` (a `redis://` URL or connection info).
    pub fn new(info: impl IntoConnectionInfo) -> Result<Self, RedisError> {
        Ok(RedisManager {
            client: Client::open(info)?,
        })
    }

    /// A manager on an existing client.
    pub fn from_client(client: Client) -> Self {
        RedisManager { client }
    }
}

impl Manager for RedisManager {
    type Object = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        self.client.get_multiplexed_async_connection().await
    }

    async fn validate(&self, conn: &mut MultiplexedConnection) -> Result<(), RedisError> {
        let pong: String = redis::cmd("PING").query_async(conn).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(RedisError::from((
                redis::ErrorKind::Io,
                "unexpected answer to PING",
                pong,
            )))
        }
    }
}
