//! Adapters that make a deadpool or bb8 manager work as a [`Manager`] (features `deadpool`
//! and `bb8`), so that existing managers such as deadpool-postgres's or bb8-redis's gain this
//! pool.

use std::borrow::Cow;
use std::fmt;

use crate::manager::Manager;

/// The error of an adapted manager: the foreign manager's error, or a message.
#[derive(Debug)]
#[non_exhaustive]
pub enum AdapterError<E> {
    /// The foreign manager's error.
    Backend(E),
    /// A message from the foreign manager (deadpool's `RecycleError::Message`).
    Message(Cow<'static, str>),
}

impl<E: fmt::Debug> fmt::Display for AdapterError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdapterError::Backend(e) => write!(f, "{e:?}"),
            AdapterError::Message(m) => f.write_str(m),
        }
    }
}

impl<E: fmt::Debug> std::error::Error for AdapterError<E> {}

/// A `deadpool::managed::Manager` used as a [`Manager`]: `create` is deadpool's `create`,
/// `recycle` is deadpool's `recycle` (its check and reset before reuse, as in deadpool), and
/// `close` calls deadpool's `detach`. Validation of long-idle objects is left to `recycle`,
/// which runs on every reuse.
///
/// ```
/// use mpm_pool::Pool;
/// use mpm_pool::adapters::FromDeadpool;
///
/// struct Numbers;
///
/// impl deadpool::managed::Manager for Numbers {
///     type Type = u32;
///     type Error = std::convert::Infallible;
///     async fn create(&self) -> Result<u32, Self::Error> {
///         Ok(7)
///     }
///     async fn recycle(
///         &self,
///         _: &mut u32,
///         _: &deadpool::managed::Metrics,
///     ) -> deadpool::managed::RecycleResult<Self::Error> {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = Pool::builder(FromDeadpool(Numbers)).build().await.unwrap();
/// assert_eq!(*pool.get().await.unwrap(), 7);
/// # }
/// ```
#[cfg(feature = "deadpool")]
#[derive(Debug, Clone)]
pub struct FromDeadpool<D>(pub D);

#[cfg(feature = "deadpool")]
impl<D> Manager for FromDeadpool<D>
where
    D: deadpool::managed::Manager + 'static,
    D::Type: 'static,
    D::Error: fmt::Debug + Sync + 'static,
{
    type Object = D::Type;
    type Error = AdapterError<D::Error>;

    async fn create(&self) -> Result<D::Type, Self::Error> {
        self.0.create().await.map_err(AdapterError::Backend)
    }

    async fn recycle(&self, object: &mut D::Type) -> Result<(), Self::Error> {
        let metrics = deadpool::managed::Metrics::default();
        self.0.recycle(object, &metrics).await.map_err(|e| match e {
            deadpool::managed::RecycleError::Backend(e) => AdapterError::Backend(e),
            deadpool::managed::RecycleError::Message(m) => AdapterError::Message(m),
        })
    }

    fn close(&self, mut object: D::Type) {
        self.0.detach(&mut object);
    }
}

/// A `bb8::ManageConnection` used as a [`Manager`]: `create` is bb8's `connect`, `validate`
/// is `is_valid`, and `is_broken` is `has_broken`.
///
/// ```
/// use mpm_pool::Pool;
/// use mpm_pool::adapters::FromBb8;
///
/// struct Numbers;
///
/// impl bb8::ManageConnection for Numbers {
///     type Connection = u32;
///     type Error = std::io::Error;
///     async fn connect(&self) -> Result<u32, Self::Error> {
///         Ok(7)
///     }
///     async fn is_valid(&self, _: &mut u32) -> Result<(), Self::Error> {
///         Ok(())
///     }
///     fn has_broken(&self, _: &mut u32) -> bool {
///         false
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = Pool::builder(FromBb8(Numbers)).build().await.unwrap();
/// assert_eq!(*pool.get().await.unwrap(), 7);
/// # }
/// ```
#[cfg(feature = "bb8")]
#[derive(Debug, Clone)]
pub struct FromBb8<B>(pub B);

#[cfg(feature = "bb8")]
impl<B> Manager for FromBb8<B>
where
    B: bb8::ManageConnection,
    B::Error: Sync,
{
    type Object = B::Connection;
    type Error = AdapterError<B::Error>;

    async fn create(&self) -> Result<B::Connection, Self::Error> {
        self.0.connect().await.map_err(AdapterError::Backend)
    }

    async fn validate(&self, object: &mut B::Connection) -> Result<(), Self::Error> {
        self.0.is_valid(object).await.map_err(AdapterError::Backend)
    }

    fn is_broken(&self, object: &mut B::Connection) -> bool {
        self.0.has_broken(object)
    }
}
