//! `Tier`: what a level below the L1 does. The boundary of the crate: `DiskTier` implements it,
//! and any other store (a shared network cache, say) can, to sit below a `TieredCache`.

use std::sync::Arc;
use std::time::Duration;

use mpm_metrics::Registry;

use crate::Error;
use crate::pattern::Pattern;
use crate::stats::TierSnapshot;

/// A value read from a [`Tier`], with what the L1 needs to hold it as the tier does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierEntry<V> {
    /// The value.
    pub value: V,
    /// The time to live left; `None` means never.
    pub ttl: Option<Duration>,
    /// The entry's tags.
    pub tags: Arc<[Arc<str>]>,
}

/// A cache level below the in-memory L1 of a [`TieredCache`](crate::TieredCache): reads fall
/// through to it on an L1 miss (promoting hits), writes and invalidations reach it.
///
/// # Contract
///
/// - **Answers are the truth or a miss.** `get` returns the value last `put` for that key (not
///   removed since and not expired), or `None`. A tier that finds damaged data counts it and
///   misses; it never answers with another key's value.
/// - **Failures are errors, never waits or panics.** A tier that cannot do something now (a
///   full disk, a server that does not answer within the tier's own timeout) returns an
///   [`Error`] at once. Every method is synchronous and is called on the caller's thread, so a
///   network tier bounds each call by a timeout of its own and answers at once while it knows
///   it is down. [`TieredCache`](crate::TieredCache) turns a failed `get` into a miss, reports a
///   failed `put` to the caller of `try_insert_with` and counts it, and keeps a failed removal
///   masked until the tier has applied it (see the crate docs, "When the L2 fails"). A tier
///   that keeps failing, or answers too slowly, is bypassed for a cool-down and then probed
///   ([`BypassPolicy`](crate::BypassPolicy)); a panic counts as a failure.
/// - **Removals may remove more, never less.** An implementation may over-approximate
///   (`remove_matching` defaults to removing the pattern's whole literal prefix).
/// - Keys are arbitrary strings; a tier must not let a key name a file or escape a namespace.
///
/// Forwarding implementations exist for `&T`, `Box<T>` and `Arc<T>`.
pub trait Tier<V>: Send + Sync {
    /// The live entry for `key`, or `None`.
    fn get(&self, key: &str) -> Result<Option<TierEntry<V>>, Error>;

    /// The live entries for `keys`, in the same order (`None` for a miss): one round trip for
    /// a tier that can batch reads (a network tier's `MGET`). The whole call fails or none of
    /// it. The default calls [`get`](Self::get) for each key.
    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<TierEntry<V>>>, Error> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    /// Stores `value` for `key` with `ttl` (`None`: never expires) and `tags`, replacing any
    /// entry (and its tags) for `key`.
    fn put(
        &self,
        key: &str,
        value: &V,
        ttl: Option<Duration>,
        tags: &[Arc<str>],
    ) -> Result<(), Error>;

    /// Removes `key`; returns whether an entry was there. When it returns `Ok`, the entry must
    /// not come back (for a durable tier: the removal is durable).
    fn remove(&self, key: &str) -> Result<bool, Error>;

    /// Removes every entry whose key starts with `prefix`; returns how many.
    fn remove_prefix(&self, prefix: &str) -> Result<usize, Error>;

    /// Removes every entry carrying `tag`; returns how many.
    fn remove_tag(&self, tag: &str) -> Result<usize, Error>;

    /// Removes every entry whose key matches `pattern`; returns how many. The default removes
    /// every key that starts with the pattern's literal prefix, which is more (never less).
    fn remove_matching(&self, pattern: &Pattern) -> Result<usize, Error> {
        self.remove_prefix(pattern.literal_prefix())
    }

    /// Removes every entry.
    fn clear(&self) -> Result<(), Error>;

    /// Makes the writes so far durable, if the tier is durable at all. Default: nothing to do.
    fn flush(&self) -> Result<(), Error> {
        Ok(())
    }

    /// A snapshot of the tier's counters.
    fn stats(&self) -> TierSnapshot;

    /// Up to `n` keys worth loading into the L1 at start-up, the most useful first (for the disk
    /// tier: the most read before the last flush, then the most recently written). Default:
    /// none.
    fn warm_keys(&self, n: usize) -> Result<Vec<String>, Error> {
        let _ = n;
        Ok(Vec::new())
    }

    /// Records how often keys were read (sampled by the `TieredCache`), for
    /// [`warm_keys`](Self::warm_keys). Default: ignored.
    fn save_heat(&self, reads: &[(&str, u64)]) -> Result<(), Error> {
        let _ = reads;
        Ok(())
    }

    /// Reports what only the tier itself can see (for the disk tier: damaged entries and
    /// files, evictions, its size) into `registry` under the instance `name`, following
    /// [`mpm_metrics::contract`] with a component of its own (the disk tier's is `cache_disk`).
    /// [`TieredCacheBuilder::build`](crate::TieredCacheBuilder::build) calls it with the
    /// cache's registry and name, so that one `.metrics(&registry, name)` covers every tier;
    /// an error fails that build. The tiered cache counts the tier's hits, writes and errors
    /// itself (`tier="l2"`). A tier that already reports (given `.metrics` by its own builder)
    /// keeps doing so and returns `Ok`. Default: nothing to report.
    fn register_metrics(&self, registry: &Registry, name: &str) -> Result<(), Error> {
        let _ = (registry, name);
        Ok(())
    }
}

macro_rules! forward {
    ($($ty:ty),*) => {$(
        impl<V, T: Tier<V> + ?Sized> Tier<V> for $ty {
            fn get(&self, key: &str) -> Result<Option<TierEntry<V>>, Error> {
                (**self).get(key)
            }
            fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<TierEntry<V>>>, Error> {
                (**self).get_many(keys)
            }
            fn put(
                &self,
                key: &str,
                value: &V,
                ttl: Option<Duration>,
                tags: &[Arc<str>],
            ) -> Result<(), Error> {
                (**self).put(key, value, ttl, tags)
            }
            fn remove(&self, key: &str) -> Result<bool, Error> {
                (**self).remove(key)
            }
            fn remove_prefix(&self, prefix: &str) -> Result<usize, Error> {
                (**self).remove_prefix(prefix)
            }
            fn remove_tag(&self, tag: &str) -> Result<usize, Error> {
                (**self).remove_tag(tag)
            }
            fn remove_matching(&self, pattern: &Pattern) -> Result<usize, Error> {
                (**self).remove_matching(pattern)
            }
            fn clear(&self) -> Result<(), Error> {
                (**self).clear()
            }
            fn flush(&self) -> Result<(), Error> {
                (**self).flush()
            }
            fn stats(&self) -> TierSnapshot {
                (**self).stats()
            }
            fn warm_keys(&self, n: usize) -> Result<Vec<String>, Error> {
                (**self).warm_keys(n)
            }
            fn save_heat(&self, reads: &[(&str, u64)]) -> Result<(), Error> {
                (**self).save_heat(reads)
            }
            fn register_metrics(&self, registry: &Registry, name: &str) -> Result<(), Error> {
                (**self).register_metrics(registry, name)
            }
        }
    )*};
}

forward!(&T, Box<T>, Arc<T>);
