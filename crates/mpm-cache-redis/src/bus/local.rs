//! What the bus applies invalidations to: a [`LocalCache`], usually a `TieredCache`.
//!
//! While the bus applies an invalidation, [`RedisTier`](crate::RedisTier)'s removals on this
//! thread know it ([`Mode`]): another instance's invalidation removes from Redis only this
//! instance's own recent writes that raced it and is not published again; an undo, and a clear
//! because messages may have been lost, do not touch Redis.

use std::cell::Cell;
use std::hash::BuildHasher;

use mpm_cache::TieredCache;

use crate::Invalidation;

/// A cache whose local entries a [`RedisInvalidationBus`](crate::RedisInvalidationBus) drops
/// when another instance invalidates them. Implemented for
/// [`TieredCache`](mpm_cache::TieredCache).
pub trait LocalCache: Send + Sync {
    /// Applies `what`; returns how many local entries were removed.
    fn invalidate(&self, what: &Invalidation) -> Result<usize, mpm_cache::Error>;
}

impl<V, S> LocalCache for TieredCache<V, S>
where
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    fn invalidate(&self, what: &Invalidation) -> Result<usize, mpm_cache::Error> {
        match what {
            Invalidation::Key(k) => self.remove(k).map(usize::from),
            Invalidation::Prefix(p) => self.invalidate_prefix(p),
            Invalidation::Tag(t) => self.invalidate_tag(t),
            Invalidation::Pattern(g) => self.invalidate_pattern(g),
            // Messages may have been lost: only the L1 goes (pinned entries stay). `clear`
            // would also clear the shared tier, or, while the cache bypasses it, owe it a
            // clear that would wipe the namespace later.
            Invalidation::All if mode() == Mode::LocalOnly => self.shrink_to(0.0),
            Invalidation::All => {
                let n = self.len();
                self.clear().map(|()| n)
            }
        }
    }
}

/// How this thread is applying an invalidation, as the Redis tier below sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The application's own: applied to Redis and published.
    Own,
    /// Another instance's, received from the bus: not published again, and applied to Redis
    /// only for the entries this instance wrote lately that still hold what it wrote (it may
    /// have written one back between that instance's removal and the message: a load that
    /// raced the invalidation); a value written by another instance, or after the message,
    /// stays. See the bus's journal.
    Remote,
    /// Another instance's undo (it removed its own racing write from Redis), or the bus
    /// clearing local caches because messages may have been lost: Redis is not touched.
    LocalOnly,
}

thread_local! {
    static MODE: Cell<Mode> = const { Cell::new(Mode::Own) };
}

/// How this thread is applying an invalidation.
pub(crate) fn mode() -> Mode {
    MODE.with(Cell::get)
}

/// Runs `f` in `mode` (the previous mode comes back even if `f` panics).
pub(crate) fn with_mode<T>(mode: Mode, f: impl FnOnce() -> T) -> T {
    struct Reset(Mode);
    impl Drop for Reset {
        fn drop(&mut self) {
            MODE.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(MODE.with(|c| c.replace(mode)));
    f()
}
