//! A [`KeyedManager`] made of two functions, as [`Manager::from_fns`](crate::Manager::from_fns)
//! makes a [`Manager`](crate::Manager).

use std::future::{Future, ready};

use super::KeyedManager;
use crate::manager::{FnError, FnManager};

/// Makes a [`KeyedManager`] from an async factory `create(&key)` and a synchronous check
/// `validate(&key, &object)` (return `false` to close the object).
///
/// ```
/// use mpm_pool::keyed::{self, KeyedPool};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = keyed::from_fns(
///     |client: &u32| {
///         let client = *client;
///         async move { Ok::<_, std::io::Error>(format!("socket for {client}")) }
///     },
///     |_client: &u32, socket: &String| !socket.is_empty(),
/// );
/// let pool = KeyedPool::builder(manager).build()?;
/// assert_eq!(pool.get(7).await?.as_str(), "socket for 7");
/// # Ok(())
/// # }
/// ```
pub fn from_fns<K, T, E, C, F, V>(create: C, validate: V) -> FnManager<C, V>
where
    T: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
    C: Fn(&K) -> F + Send + Sync + 'static,
    F: Future<Output = Result<T, E>> + Send,
    V: Fn(&K, &T) -> bool + Send + Sync + 'static,
{
    FnManager { create, validate }
}

impl<K, T, E, C, F, V> KeyedManager<K> for FnManager<C, V>
where
    T: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
    C: Fn(&K) -> F + Send + Sync + 'static,
    F: Future<Output = Result<T, E>> + Send,
    V: Fn(&K, &T) -> bool + Send + Sync + 'static,
{
    type Object = T;
    type Error = FnError<E>;

    fn create(&self, key: &K) -> impl Future<Output = Result<T, FnError<E>>> + Send {
        let made = (self.create)(key);
        async move { made.await.map_err(FnError::Create) }
    }

    fn validate(
        &self,
        key: &K,
        object: &mut T,
    ) -> impl Future<Output = Result<(), FnError<E>>> + Send {
        ready(if (self.validate)(key, object) {
            Ok(())
        } else {
            Err(FnError::Invalid)
        })
    }
}
