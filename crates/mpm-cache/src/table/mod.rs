//! The L1's table: [`Shard`]s behind read-write locks, chosen by hash.
//!
//! The same eviction policy as quick_cache (see [`shard`]), with what the L1 needs and no more:
//! the caller hashes (once, with the tier's hasher) and passes the hash with an equality test;
//! an entry's weight and pin are given at insert and kept in the entry, so no user code runs
//! under a lock; the entries that leave during a request are handed back to the caller, who
//! reports them after the lock is released. The ghost records are two bytes each
//! ([`ghost`]) rather than a slot of the slab each: an insert into a full table touches less
//! memory, and an entry costs less of it.

mod ghost;
pub(crate) mod shard;

use parking_lot::RwLock;

pub(crate) use shard::{Left, Shard};

/// The sizes and shares of a [`Table`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    /// The weight bound of the whole table.
    pub(crate) capacity: u64,
    /// About how many entries it will hold.
    pub(crate) estimated: usize,
    /// The hot ring's share of the capacity, in `[0, 1]`.
    pub(crate) hot: f64,
    /// Ghost records per estimated entry, in `[0, 1]`.
    pub(crate) ghost: f64,
    /// The number of shards (a power of two).
    pub(crate) shards: usize,
}

/// A sharded table (see the module docs).
pub(crate) struct Table<K, V> {
    shards: Box<[RwLock<Shard<K, V>>]>,
    mask: u64,
}

impl<K: Eq, V> Table<K, V> {
    /// A table of `sizes`: each shard takes an equal part of the capacity and the estimate
    /// (rounded up).
    pub(crate) fn new(sizes: Sizes) -> Self {
        let n = sizes.shards.max(1).next_power_of_two();
        let capacity = sizes.capacity.div_ceil(n as u64);
        let estimated = sizes.estimated.div_ceil(n);
        Self {
            shards: (0..n)
                .map(|_| RwLock::new(Shard::new(capacity, estimated, sizes.hot, sizes.ghost)))
                .collect(),
            mask: n as u64 - 1,
        }
    }

    /// The number of shards.
    pub(crate) fn num_shards(&self) -> usize {
        self.shards.len()
    }

    /// The shard of `hash`: bits 32 and up, as quick_cache takes them (the low bits place the
    /// entry in the shard's index and ghost records).
    #[inline(always)]
    fn shard(&self, hash: u64) -> &RwLock<Shard<K, V>> {
        &self.shards[((hash >> 32) & self.mask) as usize]
    }

    /// Reserves room for `additional` entries in all, spread over the shards.
    pub(crate) fn reserve(&self, additional: usize) {
        let each = additional.div_ceil(self.shards.len());
        for s in &*self.shards {
            s.write().reserve(each);
        }
    }

    /// A clone of the value for the key, counting a reference (a hit).
    #[inline(always)]
    pub(crate) fn get(&self, hash: u64, eq: impl Fn(&K) -> bool) -> Option<V>
    where
        V: Clone,
    {
        self.shard(hash).read().get(hash, eq).cloned()
    }

    /// A clone of the value for the key, counting nothing.
    pub(crate) fn peek(&self, hash: u64, eq: impl Fn(&K) -> bool) -> Option<V>
    where
        V: Clone,
    {
        self.shard(hash).read().peek(hash, eq).cloned()
    }

    /// Whether an entry for the key is held.
    pub(crate) fn contains(&self, hash: u64, eq: impl Fn(&K) -> bool) -> bool {
        self.shard(hash).read().peek(hash, eq).is_some()
    }

    /// Inserts or replaces (see [`Shard::insert`]); the entries that left go to `out`, called
    /// under the shard's lock (it should only keep them).
    #[inline]
    pub(crate) fn insert(
        &self,
        hash: u64,
        key: K,
        value: V,
        weight: u64,
        pinned: bool,
        out: &mut impl FnMut(u64, K, V, u64, Left),
    ) {
        self.shard(hash)
            .write()
            .insert(hash, key, value, weight, pinned, out);
    }

    /// Removes the entry for the key.
    pub(crate) fn remove(&self, hash: u64, eq: impl Fn(&K) -> bool) -> Option<(K, V, u64)> {
        self.shard(hash).write().remove(hash, eq)
    }

    /// Removes the entry for the key if `pred` holds for its value.
    pub(crate) fn remove_if(
        &self,
        hash: u64,
        eq: impl Fn(&K) -> bool,
        pred: impl FnOnce(&V) -> bool,
    ) -> Option<(K, V, u64)> {
        self.shard(hash).write().remove_if(hash, eq, pred)
    }

    /// Removes every entry.
    pub(crate) fn drain(&self) -> Vec<(K, V, u64)> {
        self.shards.iter().flat_map(|s| s.write().drain()).collect()
    }

    /// `f` of every entry for which it gives something, shard by shard (each under its read
    /// lock: `f` should be short and must not call back into the table).
    pub(crate) fn collect<T>(&self, mut f: impl FnMut(&K, &V) -> Option<T>) -> Vec<T> {
        let mut out = Vec::new();
        for s in &*self.shards {
            out.extend(s.read().iter().filter_map(|(k, v)| f(k, v)));
        }
        out
    }

    /// Sets the weight bound (split over the shards) and evicts down to it; the entries that
    /// left go to `out`.
    pub(crate) fn set_capacity(&self, capacity: u64, out: &mut impl FnMut(u64, K, V, u64, Left)) {
        let each = capacity.div_ceil(self.shards.len() as u64);
        for s in &*self.shards {
            s.write().set_capacity(each, out);
        }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// Their total weight.
    pub(crate) fn weight(&self) -> u64 {
        self.shards.iter().map(|s| s.read().weight()).sum()
    }

    /// The weight bound (the shards' sum).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> u64 {
        self.shards.iter().map(|s| s.read().capacity()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::{Sizes, Table};
    use std::sync::Arc;

    fn table(capacity: u64, shards: usize) -> Table<u64, u64> {
        Table::new(Sizes {
            capacity,
            estimated: capacity as usize,
            hot: 0.9,
            ghost: 1.0,
            shards,
        })
    }

    #[test]
    fn shards_split_the_capacity() {
        let t = table(1000, 8);
        assert_eq!(t.num_shards(), 8);
        assert_eq!(t.capacity(), 1000);
        let h = crate::admission::mix;
        for k in 0..5000u64 {
            t.insert(h(k), k, k, 1, false, &mut |_, _, _, _, _| {});
        }
        assert!(t.len() <= 1000 && t.len() > 900, "{}", t.len());
        assert_eq!(t.weight(), t.len() as u64);
        let live = t.collect(|k, v| (k == v).then_some(*k));
        assert_eq!(live.len(), t.len());
    }

    /// Many threads insert, read and remove overlapping keys: the bound holds, every value
    /// read is the one its key was given, and the counts agree with the entries.
    #[test]
    fn stress_many_threads_keep_the_bound_and_the_values() {
        let t = Arc::new(table(512, 4));
        let h = crate::admission::mix;
        let threads: Vec<_> = (0..8u64)
            .map(|id| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    let mut x = id + 1;
                    for _ in 0..50_000 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let k = x % 2048;
                        match x % 10 {
                            0 => {
                                t.remove(h(k), |q| *q == k);
                            }
                            1..=5 => {
                                if let Some(v) = t.get(h(k), |q| *q == k) {
                                    assert_eq!(v, k * 3);
                                }
                            }
                            _ => t.insert(h(k), k, k * 3, 1, false, &mut |_, k, v, _, _| {
                                assert_eq!(v, k * 3)
                            }),
                        }
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().expect("no thread panicked");
        }
        assert!(t.weight() <= 512);
        assert_eq!(t.collect(|_, _| Some(())).len(), t.len());
        let mut evicted = 0;
        t.set_capacity(100, &mut |_, _, _, _, _| evicted += 1);
        assert!(t.len() <= 100 && evicted > 0);
    }
}
