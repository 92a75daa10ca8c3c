//! Service definitions: a [`Service`] is a named fallback chain of sync or async factories.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::{AnyService, Resolver};
use crate::error::BoxError;

pub(super) type SyncFactory = Box<dyn Fn(&Resolver) -> Result<AnyService, BoxError> + Send + Sync>;
pub(super) type AsyncFactory =
    Box<dyn Fn(Resolver) -> BoxFuture<'static, Result<AnyService, BoxError>> + Send + Sync>;

pub(super) enum Factory {
    Sync(SyncFactory),
    Async(AsyncFactory),
}

pub(super) struct Implementation {
    pub(super) name: String,
    pub(super) factory: Factory,
}

/// The implementations of one service, tried in order until one succeeds.
///
/// The guide's "try the new location first, fall back to the old one", as a value:
///
/// ```
/// use mpm_lazy::{LazyRegistry, Service};
///
/// let registry = LazyRegistry::builder()
///     .register(
///         "deployer",
///         Service::from_fn("agent.deployment", |_| Err("module moved".into()))
///             .or_fn("agents.deployment", |_| Ok(String::from("legacy deployer"))),
///     )
///     .build()?;
/// assert_eq!(*registry.get::<String>("deployer")?, "legacy deployer");
/// let stats = registry.stats("deployer").expect("registered");
/// assert_eq!(stats.served_by.as_deref(), Some("agents.deployment"));
/// assert_eq!(stats.last_error.as_deref(), Some("module moved"));
/// # Ok::<(), mpm_lazy::Error>(())
/// ```
pub struct Service<T> {
    pub(super) implementations: Vec<Implementation>,
    output: std::marker::PhantomData<fn() -> T>,
}

impl<T: Send + Sync + 'static> Service<T> {
    fn with(implementation: Implementation) -> Self {
        Self {
            implementations: vec![implementation],
            output: std::marker::PhantomData,
        }
    }

    fn sync_implementation<F>(name: &str, factory: F) -> Implementation
    where
        F: Fn(&Resolver) -> Result<T, BoxError> + Send + Sync + 'static,
    {
        Implementation {
            name: name.to_owned(),
            factory: Factory::Sync(Box::new(move |resolver| {
                factory(resolver).map(|value| Arc::new(value) as AnyService)
            })),
        }
    }

    fn async_implementation<F, Fut>(name: &str, factory: F) -> Implementation
    where
        F: Fn(Resolver) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, BoxError>> + Send + 'static,
    {
        Implementation {
            name: name.to_owned(),
            factory: Factory::Async(Box::new(move |resolver| {
                let future = factory(resolver);
                Box::pin(async move { future.await.map(|value| Arc::new(value) as AnyService) })
            })),
        }
    }

    /// A service built by the synchronous `factory`, an implementation called `implementation`.
    pub fn from_fn<F>(implementation: &str, factory: F) -> Self
    where
        F: Fn(&Resolver) -> Result<T, BoxError> + Send + Sync + 'static,
    {
        Self::with(Self::sync_implementation(implementation, factory))
    }

    /// A service built by the async `factory`, an implementation called `implementation`.
    pub fn from_async_fn<F, Fut>(implementation: &str, factory: F) -> Self
    where
        F: Fn(Resolver) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, BoxError>> + Send + 'static,
    {
        Self::with(Self::async_implementation(implementation, factory))
    }

    /// Falls back to the synchronous `factory` when every earlier implementation failed.
    #[must_use]
    pub fn or_fn<F>(mut self, implementation: &str, factory: F) -> Self
    where
        F: Fn(&Resolver) -> Result<T, BoxError> + Send + Sync + 'static,
    {
        self.implementations
            .push(Self::sync_implementation(implementation, factory));
        self
    }

    /// Falls back to the async `factory` when every earlier implementation failed.
    #[must_use]
    pub fn or_async_fn<F, Fut>(mut self, implementation: &str, factory: F) -> Self
    where
        F: Fn(Resolver) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, BoxError>> + Send + 'static,
    {
        self.implementations
            .push(Self::async_implementation(implementation, factory));
        self
    }
}
