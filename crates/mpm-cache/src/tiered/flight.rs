//! In-flight loads: one loader per key however many tasks miss it at once.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::lock;

/// A loader's error as every waiter receives it: the error itself (typed, shared), and its
/// message.
#[derive(Clone)]
pub struct LoadFailure {
    error: Arc<dyn Any + Send + Sync>,
    message: Arc<str>,
}

impl LoadFailure {
    pub(super) fn new<E: fmt::Display + Send + Sync + 'static>(e: E) -> Self {
        Self {
            message: e.to_string().into(),
            error: Arc::new(e),
        }
    }

    /// The loader's error, if it was of type `E` (the type the loader returned).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use mpm_cache::{Error, TieredCache};
    ///
    /// #[derive(Debug, PartialEq)]
    /// struct NotFound(u32);
    /// impl std::fmt::Display for NotFound {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         write!(f, "agent {} not found", self.0)
    ///     }
    /// }
    ///
    /// let cache: TieredCache<String> = TieredCache::builder().build()?;
    /// let err = cache
    ///     .get_or_load("agent:7", || async { Err::<String, _>(NotFound(7)) })
    ///     .await
    ///     .unwrap_err();
    /// let Error::Load { failure, .. } = err else { panic!("{err}") };
    /// assert_eq!(*failure.downcast::<NotFound>().unwrap(), NotFound(7));
    /// # Ok::<(), mpm_cache::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn downcast<E: Send + Sync + 'static>(&self) -> Option<Arc<E>> {
        Arc::clone(&self.error).downcast::<E>().ok()
    }

    /// The loader's error, rendered.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LoadFailure").field(&self.message).finish()
    }
}

/// Where a lookup's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// The L1.
    L1,
    /// The tier below it.
    L2,
    /// A loader run (or nowhere): the lookup is a miss.
    Loaded,
}

pub(super) enum Outcome<V> {
    /// The value, and where the leader found it: the waiters' lookups count the same.
    Value(V, Found),
    Failed(LoadFailure),
    Panicked,
}

pub(super) type Rx<V> = watch::Receiver<Option<Arc<Outcome<V>>>>;

/// The loads running now, by key.
pub(super) struct Flights<V> {
    running: Mutex<HashMap<Arc<str>, Rx<V>>>,
}

impl<V> Default for Flights<V> {
    fn default() -> Self {
        Self {
            running: Mutex::default(),
        }
    }
}

/// What a task that missed a key does: lead the load, or wait for the leader's outcome.
pub(super) enum Role<'a, V> {
    Lead(Leader<'a, V>),
    Wait(Rx<V>),
}

impl<V> Flights<V> {
    /// Joins the load of `key`, leading it if none is running.
    pub(super) fn join(&self, key: &str) -> Role<'_, V> {
        let mut m = lock(&self.running);
        match m.get(key) {
            Some(rx) => Role::Wait(rx.clone()),
            None => {
                let (tx, rx) = watch::channel(None);
                let key: Arc<str> = key.into();
                m.insert(Arc::clone(&key), rx);
                Role::Lead(Leader {
                    flights: self,
                    key,
                    tx,
                })
            }
        }
    }
}

/// The leader of one load. Dropping it ends the load: waiters hear the outcome sent, or
/// [`Outcome::Panicked`] if the leader panicked, or (cancellation) a closed channel, after
/// which one of them leads instead.
pub(super) struct Leader<'a, V> {
    flights: &'a Flights<V>,
    pub(super) key: Arc<str>,
    tx: watch::Sender<Option<Arc<Outcome<V>>>>,
}

impl<V> Leader<'_, V> {
    pub(super) fn send(&self, outcome: Outcome<V>) {
        self.tx.send_replace(Some(Arc::new(outcome)));
    }
}

impl<V> Drop for Leader<'_, V> {
    fn drop(&mut self) {
        if self.tx.borrow().is_none() && std::thread::panicking() {
            self.tx.send_replace(Some(Arc::new(Outcome::Panicked)));
        }
        let mut m = lock(&self.flights.running);
        if m.get(&self.key)
            .is_some_and(|rx| rx.same_channel(&self.tx.subscribe()))
        {
            m.remove(&self.key);
        }
    }
}
