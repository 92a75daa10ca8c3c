//! The [`Manager`] trait: how a pool creates, checks, resets and closes its objects.

use std::fmt;
use std::future::{Future, ready};
use std::sync::Arc;

/// Creates, validates, recycles and closes the objects of a [`Pool`](crate::Pool).
///
/// Only [`create`](Manager::create) is required. Every async method is bounded by the pool's
/// matching timeout, so an implementation never needs its own.
///
/// # Example
///
/// ```
/// use mpm_pool::Manager;
/// use std::convert::Infallible;
///
/// struct Counter;
///
/// impl Manager for Counter {
///     type Object = u64;
///     type Error = Infallible;
///     async fn create(&self) -> Result<u64, Infallible> {
///         Ok(0)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = mpm_pool::Pool::builder(Counter).build().await.unwrap();
/// assert_eq!(*pool.get().await.unwrap(), 0);
/// # }
/// ```
pub trait Manager: Send + Sync + 'static {
    /// The pooled object, for example a connection.
    type Object: Send + 'static;
    /// The error of [`create`](Manager::create), [`validate`](Manager::validate) and
    /// [`recycle`](Manager::recycle).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Creates a new object. Bounded by the pool's create timeout.
    fn create(&self) -> impl Future<Output = Result<Self::Object, Self::Error>> + Send;

    /// A cheap check that an idle object still works, run before it is handed out unless it
    /// was used within the pool's skip-validation window. An error closes the object and the
    /// pool tries the next one. Bounded by the pool's validate timeout. The default accepts.
    fn validate(
        &self,
        object: &mut Self::Object,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = object;
        ready(Ok(()))
    }

    /// Resets an object's state after a use (for example a database session), run before the
    /// object is handed out again (before any validation). An error
    /// closes the object. Bounded by the pool's recycle timeout. The default does nothing.
    fn recycle(
        &self,
        object: &mut Self::Object,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = object;
        ready(Ok(()))
    }

    /// A synchronous check, on release and before an idle object is handed out: `true` means
    /// the object is broken and is closed. It must be cheap and must not block (for example
    /// "is the socket closed"). The default says `false`.
    fn is_broken(&self, object: &mut Self::Object) -> bool {
        let _ = object;
        false
    }

    /// Closes an object that leaves the pool. It must not block; the default drops it.
    fn close(&self, object: Self::Object) {
        drop(object);
    }

    /// A manager made of two functions, an async factory `create` and a synchronous check
    /// `validate` (return `false` to close the object): the guide's
    /// `ResourcePool(factory)`. The same as [`from_fns`]; the type it makes
    /// ([`FnManager`]) is inferred from the two functions, so call it as
    /// `Manager::from_fns(create, validate)`. Name the type of `validate`'s parameter, as
    /// below: nothing else tells the compiler what the closure takes.
    ///
    /// ```
    /// use mpm_pool::{Manager, Pool};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let manager = Manager::from_fns(
    ///     || async { Ok::<_, std::io::Error>(Vec::<u8>::with_capacity(1024)) },
    ///     |buf: &Vec<u8>| buf.capacity() >= 1024,
    /// );
    /// let pool = Pool::builder(manager).max_size(std::num::NonZeroUsize::new(4).unwrap()).build().await?;
    /// assert!(pool.get().await?.capacity() >= 1024);
    /// # Ok(())
    /// # }
    /// ```
    fn from_fns<C, V>(create: C, validate: V) -> Self
    where
        Self: Sized,
        (C, V): FnPair<Manager = Self>,
    {
        (create, validate).into_manager()
    }
}

/// A `(create, validate)` pair that [`Manager::from_fns`] accepts: an async factory and a
/// synchronous validity check. Implemented for every such pair of functions; it exists so
/// that `Manager::from_fns` can name its result, and there is no need to implement it.
pub trait FnPair {
    /// The manager the pair makes.
    type Manager: Manager;
    /// Makes the manager.
    fn into_manager(self) -> Self::Manager;
}

impl<T, E, C, F, V> FnPair for (C, V)
where
    T: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
    C: Fn() -> F + Send + Sync + 'static,
    F: Future<Output = Result<T, E>> + Send,
    V: Fn(&T) -> bool + Send + Sync + 'static,
{
    type Manager = FnManager<C, V>;

    fn into_manager(self) -> FnManager<C, V> {
        let (create, validate) = self;
        FnManager { create, validate }
    }
}

macro_rules! forward_manager {
    ($($ty:ty),*) => {$(
        impl<M: Manager + ?Sized> Manager for $ty {
            type Object = M::Object;
            type Error = M::Error;
            fn create(&self) -> impl Future<Output = Result<Self::Object, Self::Error>> + Send {
                (**self).create()
            }
            fn validate(
                &self,
                object: &mut Self::Object,
            ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                (**self).validate(object)
            }
            fn recycle(
                &self,
                object: &mut Self::Object,
            ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                (**self).recycle(object)
            }
            fn is_broken(&self, object: &mut Self::Object) -> bool {
                (**self).is_broken(object)
            }
            fn close(&self, object: Self::Object) {
                (**self).close(object)
            }
        }
    )*};
}

forward_manager!(Arc<M>, Box<M>);

/// A [`Manager`] made of two functions: an async factory and a synchronous validity check.
/// Build one with [`Manager::from_fns`] or [`from_fns`]; this is the guide's
/// `ResourcePool(factory)`. [`keyed::from_fns`](crate::keyed::from_fns) makes one for a
/// [`KeyedPool`](crate::keyed::KeyedPool), whose functions take the key.
pub struct FnManager<C, V> {
    pub(crate) create: C,
    pub(crate) validate: V,
}

impl<C, V> fmt::Debug for FnManager<C, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnManager").finish_non_exhaustive()
    }
}

/// The error of an [`FnManager`] whose validity check said no.
#[derive(Debug, thiserror::Error)]
pub enum FnError<E> {
    /// The factory failed.
    #[error(transparent)]
    Create(E),
    /// The validity check returned `false`.
    #[error("the object failed its validity check")]
    Invalid,
}

/// Makes a [`Manager`] from an async factory `create` and a synchronous check `validate`
/// (return `false` to close the object). [`Manager::from_fns`] does the same.
///
/// ```
/// use mpm_pool::{Pool, manager};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = manager::from_fns(
///     || async { Ok::<_, std::io::Error>(Vec::<u8>::with_capacity(1024)) },
///     |buf: &Vec<u8>| buf.capacity() >= 1024,
/// );
/// let pool = Pool::builder(manager).max_size(std::num::NonZeroUsize::new(4).unwrap()).build().await?;
/// let buf = pool.get().await?;
/// assert!(buf.capacity() >= 1024);
/// # Ok(())
/// # }
/// ```
pub fn from_fns<T, E, C, F, V>(create: C, validate: V) -> FnManager<C, V>
where
    T: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
    C: Fn() -> F + Send + Sync + 'static,
    F: Future<Output = Result<T, E>> + Send,
    V: Fn(&T) -> bool + Send + Sync + 'static,
{
    FnManager { create, validate }
}

impl<T, E, C, F, V> Manager for FnManager<C, V>
where
    T: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
    C: Fn() -> F + Send + Sync + 'static,
    F: Future<Output = Result<T, E>> + Send,
    V: Fn(&T) -> bool + Send + Sync + 'static,
{
    type Object = T;
    type Error = FnError<E>;

    async fn create(&self) -> Result<T, FnError<E>> {
        (self.create)().await.map_err(FnError::Create)
    }

    fn validate(&self, object: &mut T) -> impl Future<Output = Result<(), FnError<E>>> + Send {
        ready(if (self.validate)(object) {
            Ok(())
        } else {
            Err(FnError::Invalid)
        })
    }
}
