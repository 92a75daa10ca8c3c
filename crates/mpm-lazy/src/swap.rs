//! [`Swap`]: a hot-swappable handle to a shared value, also for `dyn Trait`.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

/// A handle whose value can be replaced while readers use it; built on `arc-swap`.
///
/// Readers never block and never wait for a writer: [`load`](Swap::load) is lock-free. A
/// [`store`](Swap::store) is atomic: every load sees either the old value or the new one. The old
/// value is dropped when its last reader drops its guard (or its `Arc`).
///
/// `T` may be unsized, so one handle can swap one implementation of a trait for another, which
/// `ArcSwap<T>` cannot hold directly:
///
/// ```
/// use std::sync::Arc;
/// use mpm_lazy::Swap;
///
/// trait Deployer: Send + Sync {
///     fn name(&self) -> &str;
/// }
/// struct Legacy;
/// impl Deployer for Legacy {
///     fn name(&self) -> &str { "legacy" }
/// }
/// struct New;
/// impl Deployer for New {
///     fn name(&self) -> &str { "new" }
/// }
///
/// let deployer: Swap<dyn Deployer> = Swap::new(Arc::new(Legacy));
/// let reader = deployer.load();
/// let old = deployer.swap(Arc::new(New));
/// assert_eq!(reader.name(), "legacy"); // a reader keeps the value it loaded
/// assert_eq!(deployer.load().name(), "new");
/// assert_eq!(old.name(), "legacy");
/// assert_eq!(deployer.version(), 1);
/// ```
pub struct Swap<T: ?Sized> {
    // `ArcSwap` needs a sized, thin pointee, so an unsized `T` sits behind one more `Arc`.
    current: ArcSwap<Arc<T>>,
    version: AtomicU64,
}

/// A loaded value of a [`Swap`]; dereferences to `T` and keeps it alive while held.
///
/// Hold guards briefly (they may pin a slot of arc-swap's debt list); use
/// [`Swap::load_full`] to keep a value for long.
pub struct SwapGuard<T: ?Sized> {
    guard: arc_swap::Guard<Arc<Arc<T>>>,
}

impl<T: ?Sized> Deref for SwapGuard<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: ?Sized> SwapGuard<T> {
    /// An owned `Arc` of the loaded value.
    pub fn to_arc(&self) -> Arc<T> {
        Arc::clone(&self.guard)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for SwapGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized> Swap<T> {
    /// A handle holding `value`.
    pub fn new(value: Arc<T>) -> Self {
        Self {
            current: ArcSwap::from_pointee(value),
            version: AtomicU64::new(0),
        }
    }

    /// The current value, lock-free. The guard keeps it alive even if it is swapped out.
    #[inline]
    pub fn load(&self) -> SwapGuard<T> {
        SwapGuard {
            guard: self.current.load(),
        }
    }

    /// The current value as an owned `Arc`, for keeping it across long work.
    pub fn load_full(&self) -> Arc<T> {
        Arc::clone(&self.current.load())
    }

    /// Replaces the value atomically.
    pub fn store(&self, value: Arc<T>) {
        drop(self.swap(value));
    }

    /// Replaces the value atomically and returns the old one.
    pub fn swap(&self, value: Arc<T>) -> Arc<T> {
        let old = self.current.swap(Arc::new(value));
        self.version.fetch_add(1, Ordering::AcqRel);
        Arc::unwrap_or_clone(old)
    }

    /// Replaces the value with `update(current)`, retrying if another writer got in between, so
    /// no concurrent update is lost ("read, copy, update"). `update` may run more than once.
    /// Returns the value that was replaced.
    pub fn rcu(&self, mut update: impl FnMut(&Arc<T>) -> Arc<T>) -> Arc<T> {
        let old = self.current.rcu(|current| Arc::new(update(current)));
        self.version.fetch_add(1, Ordering::AcqRel);
        Arc::unwrap_or_clone(old)
    }

    /// How many times the value was replaced.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
}

impl<T> Swap<T> {
    /// A handle holding `value`.
    pub fn from_value(value: T) -> Self {
        Self::new(Arc::new(value))
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Swap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Swap")
            .field("value", &&*self.load())
            .field("version", &self.version())
            .finish()
    }
}

impl<T: ?Sized> From<Arc<T>> for Swap<T> {
    fn from(value: Arc<T>) -> Self {
        Self::new(value)
    }
}
