//! [`KeyedManager`]: what a [`KeyedPool`](super::KeyedPool) asks of its objects, given their key.

use std::future::Future;
use std::sync::Arc;

/// Creates, validates and closes the objects of a [`KeyedPool`](super::KeyedPool), given their key.
pub trait KeyedManager<K>: Send + Sync + 'static {
    /// The pooled object.
    type Object: Send + 'static;
    /// The error of [`create`](KeyedManager::create) and [`validate`](KeyedManager::validate).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Creates an object for `key`. Bounded by the pool's create timeout.
    fn create(&self, key: &K) -> impl Future<Output = Result<Self::Object, Self::Error>> + Send;

    /// Checks an idle object not used within the skip-validation window. The default accepts.
    fn validate(
        &self,
        key: &K,
        object: &mut Self::Object,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = (key, object);
        std::future::ready(Ok(()))
    }

    /// A cheap synchronous check, on release and on idle objects in each maintenance pass:
    /// `true` closes the object. The default says no.
    fn is_broken(&self, key: &K, object: &mut Self::Object) -> bool {
        let _ = (key, object);
        false
    }

    /// Closes an object that leaves the pool. The default drops it.
    fn close(&self, key: &K, object: Self::Object) {
        let _ = key;
        drop(object);
    }
}

impl<K, M: KeyedManager<K> + ?Sized> KeyedManager<K> for Arc<M> {
    type Object = M::Object;
    type Error = M::Error;
    fn create(&self, key: &K) -> impl Future<Output = Result<Self::Object, Self::Error>> + Send {
        (**self).create(key)
    }
    fn validate(
        &self,
        key: &K,
        object: &mut Self::Object,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).validate(key, object)
    }
    fn is_broken(&self, key: &K, object: &mut Self::Object) -> bool {
        (**self).is_broken(key, object)
    }
    fn close(&self, key: &K, object: Self::Object) {
        (**self).close(key, object)
    }
}
