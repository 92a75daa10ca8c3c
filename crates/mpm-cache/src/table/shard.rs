//! One shard of the table: the entries, the index over them and the eviction policy.
//!
//! The policy is quick_cache's (S3-FIFO-like, CLOCK on two rings): a new key enters the cold
//! ring, or the hot ring while the hot ring is below its share; a hit counts a reference (at
//! most [`MAX_REFERENCES`]). Eviction takes the cold ring's oldest entry: referenced, it moves
//! to the hot ring (which then evicts down to its share); unreferenced, it leaves and its hash
//! goes to the [`Ghost`] records. The hot ring evicts its first unreferenced entry, taking a
//! reference from each entry it passes. A key found in the ghost records enters hot. Pinned
//! entries are passed over, never evicted.
//!
//! Entries live in a vector (a slab: a freed place is reused) linked into the two rings by
//! index; a [`HashTable`] of indices finds them by hash.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

use hashbrown::HashTable;

use super::ghost::Ghost;

/// The most references a hit gives an entry.
pub(crate) const MAX_REFERENCES: u8 = 2;

/// No entry: the end of an empty ring.
const NIL: u32 = u32::MAX;

/// Why an entry left the shard during a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Left {
    /// Evicted for room (or refused: heavier than the hot ring's share).
    Evicted,
    /// Its value was replaced by an insert of the same key.
    Replaced,
}

struct Node<K, V> {
    key: K,
    value: V,
    hash: u64,
    weight: u64,
    prev: u32,
    next: u32,
    referenced: AtomicU8,
    hot: bool,
    pinned: bool,
}

/// A shard (see the module docs). Not synchronised: the table puts each behind a lock, and the
/// admission policy's shadow caches use one alone.
pub(crate) struct Shard<K, V> {
    map: HashTable<u32>,
    nodes: Vec<Option<Node<K, V>>>,
    free: Vec<u32>,
    /// The first entry of the cold ring (the next to consider), or [`NIL`].
    cold: u32,
    /// The first entry of the hot ring, or [`NIL`].
    hot: u32,
    weight_cold: u64,
    weight_hot: u64,
    len: usize,
    capacity: u64,
    hot_share: f64,
    hot_target: u64,
    ghost: Ghost,
}

/// The hot ring's share of `capacity` (at least 1 if the capacity is).
fn hot_target(capacity: u64, share: f64) -> u64 {
    ((capacity as f64 * share) as u64).clamp(capacity.min(1), capacity)
}

impl<K, V> Shard<K, V> {
    /// A shard of `capacity` weight, expected to hold about `estimated` entries; the hot ring
    /// takes `hot` of the capacity, the ghost records `ghost` times the estimate.
    pub(crate) fn new(capacity: u64, estimated: usize, hot: f64, ghost: f64) -> Self {
        Self {
            map: HashTable::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            cold: NIL,
            hot: NIL,
            weight_cold: 0,
            weight_hot: 0,
            len: 0,
            capacity,
            hot_share: hot,
            hot_target: hot_target(capacity, hot),
            ghost: Ghost::new((estimated as f64 * ghost) as usize),
        }
    }

    /// Room for `additional` more entries without growing.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let nodes = &self.nodes;
        self.map.reserve(additional, |&i| match &nodes[i as usize] {
            Some(n) => n.hash,
            None => unreachable!("an indexed place holds an entry"),
        });
        self.nodes.reserve(additional);
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Their total weight.
    pub(crate) fn weight(&self) -> u64 {
        self.weight_cold + self.weight_hot
    }

    /// The weight bound.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    #[inline]
    fn node(&self, i: u32) -> &Node<K, V> {
        match self.nodes.get(i as usize) {
            Some(Some(n)) => n,
            _ => unreachable!("a linked or indexed place holds an entry"),
        }
    }

    #[inline]
    fn node_mut(&mut self, i: u32) -> &mut Node<K, V> {
        match self.nodes.get_mut(i as usize) {
            Some(Some(n)) => n,
            _ => unreachable!("a linked or indexed place holds an entry"),
        }
    }

    /// The place of the entry with `hash` whose key satisfies `eq`.
    #[inline]
    fn find(&self, hash: u64, eq: impl Fn(&K) -> bool) -> Option<u32> {
        self.map
            .find(hash, |&i| {
                let n = self.node(i);
                n.hash == hash && eq(&n.key)
            })
            .copied()
    }

    /// The value for the key, counting a reference.
    #[inline]
    pub(crate) fn get(&self, hash: u64, eq: impl Fn(&K) -> bool) -> Option<&V> {
        let n = self.node(self.find(hash, eq)?);
        if n.referenced.load(Relaxed) < MAX_REFERENCES {
            n.referenced.fetch_add(1, Relaxed);
        }
        Some(&n.value)
    }

    /// The value for the key, counting nothing.
    #[inline]
    pub(crate) fn peek(&self, hash: u64, eq: impl Fn(&K) -> bool) -> Option<&V> {
        Some(&self.node(self.find(hash, eq)?).value)
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.nodes.iter().flatten().map(|n| (&n.key, &n.value))
    }

    /// Links `i` at the end of the ring that starts at `head`; the ring's new start.
    #[inline]
    fn link(&mut self, i: u32, head: u32) -> u32 {
        if head == NIL {
            let n = self.node_mut(i);
            n.prev = i;
            n.next = i;
            return i;
        }
        let last = self.node(head).prev;
        let n = self.node_mut(i);
        n.prev = last;
        n.next = head;
        self.node_mut(last).next = i;
        self.node_mut(head).prev = i;
        head
    }

    /// Unlinks `i` from its ring; the entry after it, [`NIL`] if it was alone.
    #[inline]
    fn unlink(&mut self, i: u32) -> u32 {
        let (prev, next) = {
            let n = self.node(i);
            (n.prev, n.next)
        };
        if next == i {
            return NIL;
        }
        self.node_mut(prev).next = next;
        self.node_mut(next).prev = prev;
        next
    }

    /// Takes the entry at `i` out of the slab and the index (not out of its ring). Always
    /// inlined: out of line, the entry was returned through memory, and an insert into a full
    /// tier counted 689 instructions instead of 643 (`cargo xtask budgets cache`).
    #[inline(always)]
    fn take(&mut self, i: u32) -> Node<K, V> {
        let Some(n) = self.nodes.get_mut(i as usize).and_then(Option::take) else {
            unreachable!("a linked place holds an entry");
        };
        self.free.push(i);
        if let Ok(e) = self.map.find_entry(n.hash, |&j| j == i) {
            e.remove();
        }
        self.len -= 1;
        n
    }

    /// Unlinks and takes the entry at `i`, wherever it is.
    fn remove_at(&mut self, i: u32) -> (K, V, u64) {
        let next = self.unlink(i);
        let n = self.node(i);
        let (hot, weight) = (n.hot, n.weight);
        if hot {
            if self.hot == i {
                self.hot = next;
            }
            self.weight_hot -= weight;
        } else {
            if self.cold == i {
                self.cold = next;
            }
            self.weight_cold -= weight;
        }
        let n = self.take(i);
        (n.key, n.value, n.weight)
    }

    /// Evicts from the cold ring (or, when it is empty or all pinned, the hot ring) or moves
    /// its first referenced entry to the hot ring. Whether anything changed.
    ///
    /// The common case, an unreferenced, unpinned first entry that leaves, is inline in the
    /// insert; the rest is [`advance_cold_slow`](Self::advance_cold_slow). Inline, an insert
    /// into a full tier counted 622 instructions instead of 643 (`cargo xtask budgets cache`).
    #[inline(always)]
    fn advance_cold(&mut self, out: &mut impl FnMut(u64, K, V, u64, Left)) -> bool {
        let i = self.cold;
        if i != NIL {
            let n = self.node_mut(i);
            if *n.referenced.get_mut() == 0 && !n.pinned {
                self.evict_cold(i, out);
                return true;
            }
        }
        self.advance_cold_slow(out)
    }

    /// Evicts the cold entry at `i` (the ring's first unpinned one): the ring then starts
    /// after it, and its hash goes to the ghost records.
    #[inline(always)]
    fn evict_cold(&mut self, i: u32, out: &mut impl FnMut(u64, K, V, u64, Left)) {
        self.weight_cold -= self.node(i).weight;
        self.cold = self.unlink(i);
        let n = self.take(i);
        self.ghost.record(n.hash);
        out(n.hash, n.key, n.value, n.weight, Left::Evicted);
    }

    /// [`advance_cold`](Self::advance_cold) past its common case.
    fn advance_cold_slow(&mut self, out: &mut impl FnMut(u64, K, V, u64, Left)) -> bool {
        let mut i = self.cold;
        if i == NIL {
            return self.advance_hot(out);
        }
        loop {
            let n = self.node_mut(i);
            let r = *n.referenced.get_mut();
            if r != 0 {
                *n.referenced.get_mut() = r - 1;
                n.hot = true;
                let w = n.weight;
                self.weight_cold -= w;
                self.weight_hot += w;
                self.cold = self.unlink(i);
                self.hot = self.link(i, self.hot);
                while self.weight_hot > self.hot_target && self.advance_hot(out) {}
                return true;
            }
            if n.pinned {
                let next = n.next;
                if next == self.cold {
                    return self.advance_hot(out);
                }
                i = next;
                continue;
            }
            self.evict_cold(i, out);
            return true;
        }
    }

    /// Evicts the first unreferenced, unpinned entry of the hot ring, taking a reference from
    /// each entry passed. False if the ring is empty or all pinned.
    fn advance_hot(&mut self, out: &mut impl FnMut(u64, K, V, u64, Left)) -> bool {
        let mut i = self.hot;
        if i == NIL {
            return false;
        }
        let mut unpinned = 0usize;
        loop {
            let head = self.hot;
            let n = self.node_mut(i);
            let r = (*n.referenced.get_mut()).min(MAX_REFERENCES);
            let next = n.next;
            if n.pinned {
                *n.referenced.get_mut() = r.saturating_sub(1);
                if next == head {
                    if unpinned == 0 {
                        return false;
                    }
                    unpinned = 0;
                }
                i = next;
                continue;
            }
            unpinned += 1;
            if r != 0 {
                *n.referenced.get_mut() = r - 1;
                i = next;
                continue;
            }
            self.weight_hot -= n.weight;
            self.hot = self.unlink(i);
            let n = self.take(i);
            out(n.hash, n.key, n.value, n.weight, Left::Evicted);
            return true;
        }
    }

    /// Evicts until the shard's weight plus `extra` fits (or nothing more can go).
    #[inline]
    fn make_room(&mut self, extra: u64, out: &mut impl FnMut(u64, K, V, u64, Left)) {
        while self.weight() + extra > self.capacity && self.advance_cold(out) {}
    }

    /// Inserts or replaces the entry for `key` (whose hash is `hash`), of `weight` (at least
    /// 1). Entries that leave go to `out` with their hash: the replaced value, the evicted
    /// entries, and the new entry itself if it weighs more than the hot ring's share and is not
    /// pinned.
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        weight: u64,
        pinned: bool,
        out: &mut impl FnMut(u64, K, V, u64, Left),
    ) where
        K: Eq,
    {
        let weight = weight.max(1);
        let found = self.find(hash, |k| *k == key);
        if weight > self.hot_target && !pinned {
            if let Some(i) = found {
                let (k, v, w) = self.remove_at(i);
                out(hash, k, v, w, Left::Evicted);
            }
            out(hash, key, value, weight, Left::Evicted);
            return;
        }
        if let Some(i) = found {
            let n = self.node_mut(i);
            let r = n.referenced.get_mut();
            *r = (*r + 1).min(MAX_REFERENCES);
            let old_weight = std::mem::replace(&mut n.weight, weight);
            n.pinned = pinned;
            let old = std::mem::replace(&mut n.value, value);
            if n.hot {
                self.weight_hot = self.weight_hot - old_weight + weight;
            } else {
                self.weight_cold = self.weight_cold - old_weight + weight;
            }
            out(hash, key, old, old_weight, Left::Replaced);
            self.make_room(0, out);
            return;
        }
        let ghost = self.ghost.take(hash);
        let hot = ghost || self.weight_hot + weight <= self.hot_target;
        if !ghost {
            // Room before the new entry enters, which gives it a little priority.
            self.make_room(weight, out);
        }
        let node = Node {
            key,
            value,
            hash,
            weight,
            prev: NIL,
            next: NIL,
            referenced: AtomicU8::new(0),
            hot,
            pinned,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                u32::try_from(self.nodes.len() - 1).expect("fewer than 2^32 entries a shard")
            }
        };
        if hot {
            self.weight_hot += weight;
            self.hot = self.link(i, self.hot);
        } else {
            self.weight_cold += weight;
            self.cold = self.link(i, self.cold);
        }
        self.len += 1;
        let nodes = &self.nodes;
        self.map
            .insert_unique(hash, i, |&j| match &nodes[j as usize] {
                Some(n) => n.hash,
                None => unreachable!("an indexed place holds an entry"),
            });
        if ghost {
            self.make_room(0, out);
        }
    }

    /// Removes the entry for the key.
    pub(crate) fn remove(&mut self, hash: u64, eq: impl Fn(&K) -> bool) -> Option<(K, V, u64)> {
        let i = self.find(hash, eq)?;
        Some(self.remove_at(i))
    }

    /// Removes the entry for the key if `pred` holds for its value.
    pub(crate) fn remove_if(
        &mut self,
        hash: u64,
        eq: impl Fn(&K) -> bool,
        pred: impl FnOnce(&V) -> bool,
    ) -> Option<(K, V, u64)> {
        let i = self.find(hash, eq)?;
        if !pred(&self.node(i).value) {
            return None;
        }
        Some(self.remove_at(i))
    }

    /// Removes every entry.
    pub(crate) fn drain(&mut self) -> Vec<(K, V, u64)> {
        let out = self
            .nodes
            .drain(..)
            .flatten()
            .map(|n| (n.key, n.value, n.weight))
            .collect();
        self.map.clear();
        self.free.clear();
        self.cold = NIL;
        self.hot = NIL;
        self.weight_cold = 0;
        self.weight_hot = 0;
        self.len = 0;
        out
    }

    /// Sets the weight bound and evicts down to it.
    pub(crate) fn set_capacity(
        &mut self,
        capacity: u64,
        out: &mut impl FnMut(u64, K, V, u64, Left),
    ) {
        self.capacity = capacity;
        self.hot_target = hot_target(capacity, self.hot_share);
        self.make_room(0, out);
    }
}

#[cfg(test)]
mod tests {
    use super::{Left, Shard};

    fn shard(capacity: u64) -> Shard<u64, u64> {
        Shard::new(capacity, capacity as usize, 0.9, 1.0)
    }

    /// Inserts `k` (hashed by `mix`) with weight 1; the keys that left.
    fn put(s: &mut Shard<u64, u64>, k: u64, pinned: bool) -> Vec<(u64, Left)> {
        let mut left = Vec::new();
        s.insert(
            crate::admission::mix(k),
            k,
            k * 10,
            1,
            pinned,
            &mut |_, k, _, _, why| left.push((k, why)),
        );
        left
    }

    fn get(s: &Shard<u64, u64>, k: u64) -> Option<u64> {
        s.get(crate::admission::mix(k), |x| *x == k).copied()
    }

    #[test]
    fn an_insert_is_found_and_a_second_replaces_it() {
        let mut s = shard(4);
        assert!(put(&mut s, 1, false).is_empty());
        assert_eq!(get(&s, 1), Some(10));
        assert_eq!(put(&mut s, 1, false), vec![(1, Left::Replaced)]);
        assert_eq!((s.len(), s.weight()), (1, 1));
    }

    #[test]
    fn the_weight_bound_holds_and_unreferenced_new_keys_leave_first() {
        let mut s = Shard::new(10, 10, 0.5, 1.0);
        for k in 0..10 {
            put(&mut s, k, false);
        }
        // Keys 0..5 filled the hot ring, 5..10 are cold; 5 and 6 get a hit.
        assert_eq!(get(&s, 5), Some(50));
        assert_eq!(get(&s, 6), Some(60));
        let mut left = Vec::new();
        for k in 10..13 {
            left.extend(put(&mut s, k, false));
        }
        assert_eq!(s.weight(), 10);
        assert!(
            left.iter()
                .all(|&(k, why)| why == Left::Evicted && k != 5 && k != 6)
        );
        assert_eq!(
            get(&s, 5),
            Some(50),
            "a referenced cold key moved to the hot ring"
        );
    }

    #[test]
    fn a_key_evicted_lately_comes_back_hot() {
        let mut s = Shard::new(4, 4, 0.5, 1.0);
        for k in 0..4 {
            put(&mut s, k, false);
        }
        // 2 and 3 are cold; 4 evicts 2, whose hash goes to the ghost records.
        assert_eq!(put(&mut s, 4, false), vec![(2, Left::Evicted)]);
        put(&mut s, 2, false);
        let n = s.node(s.find(crate::admission::mix(2), |k| *k == 2).unwrap());
        assert!(n.hot, "a ghost key enters the hot ring");
        assert_eq!(s.weight(), 4);
    }

    #[test]
    fn pinned_entries_are_never_evicted() {
        let mut s = shard(8);
        for k in 0..8 {
            put(&mut s, k, true);
        }
        // Full of pinned entries: a new one enters and nothing can leave.
        assert!(put(&mut s, 100, false).is_empty());
        for k in 200..300 {
            for (gone, _) in put(&mut s, k, false) {
                assert!(gone >= 100, "pinned key {gone} evicted");
            }
        }
        assert!((0..8).all(|k| get(&s, k).is_some()));
    }

    #[test]
    fn an_entry_heavier_than_the_hot_share_is_refused_unless_pinned() {
        let mut s: Shard<u64, u64> = Shard::new(10, 10, 0.5, 1.0);
        let mut left = Vec::new();
        s.insert(1, 1, 1, 6, false, &mut |_, k, _, _, why| {
            left.push((k, why))
        });
        assert_eq!(left, vec![(1, Left::Evicted)]);
        assert_eq!(s.len(), 0);
        s.insert(1, 1, 1, 6, true, &mut |_, _, _, _, _| {
            panic!("nothing leaves")
        });
        assert_eq!(s.weight(), 6);
    }

    #[test]
    fn remove_and_remove_if_and_drain() {
        let mut s = shard(8);
        for k in 0..5 {
            put(&mut s, k, false);
        }
        let h = |k: u64| crate::admission::mix(k);
        assert_eq!(s.remove(h(1), |k| *k == 1), Some((1, 10, 1)));
        assert_eq!(s.remove(h(1), |k| *k == 1), None);
        assert_eq!(s.remove_if(h(2), |k| *k == 2, |v| *v == 0), None);
        assert_eq!(
            s.remove_if(h(2), |k| *k == 2, |v| *v == 20),
            Some((2, 20, 1))
        );
        assert_eq!((s.len(), s.weight()), (3, 3));
        let mut all: Vec<u64> = s.drain().into_iter().map(|(k, _, _)| k).collect();
        all.sort_unstable();
        assert_eq!(all, vec![0, 3, 4]);
        assert_eq!((s.len(), s.weight(), s.iter().count()), (0, 0, 0));
        assert!(put(&mut s, 9, false).is_empty(), "usable after a drain");
    }

    #[test]
    fn reserving_room_keeps_every_entry_findable() {
        let mut s = shard(1000);
        for k in 0..100 {
            put(&mut s, k, false);
        }
        s.reserve(5000);
        assert!((0..100).all(|k| get(&s, k) == Some(k * 10)));
    }

    #[test]
    fn a_smaller_capacity_evicts_down_to_it() {
        let mut s = shard(100);
        for k in 0..100 {
            put(&mut s, k, false);
        }
        let mut n = 0;
        s.set_capacity(30, &mut |_, _, _, _, _| n += 1);
        assert_eq!((n, s.len(), s.weight()), (70, 30, 30));
    }

    #[test]
    fn churn_keeps_the_counts_and_the_rings_consistent() {
        let mut s = Shard::new(64, 64, 0.7, 1.0);
        let mut x = 1u64;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = x % 300;
            match step % 7 {
                0 => {
                    s.remove(crate::admission::mix(k), |q| *q == k);
                }
                1 | 2 => {
                    get(&s, k);
                }
                _ => {
                    put(&mut s, k, k.is_multiple_of(50) && step.is_multiple_of(11));
                }
            }
        }
        let weight: u64 = s.nodes.iter().flatten().map(|n| n.weight).sum();
        assert_eq!(s.iter().count(), s.len());
        assert_eq!(weight, s.weight());
        let hot: u64 = s
            .nodes
            .iter()
            .flatten()
            .filter(|n| n.hot)
            .map(|n| n.weight)
            .sum();
        assert_eq!(hot, s.weight_hot);
        // Each ring, walked from its start, holds exactly its entries.
        for (head, is_hot) in [(s.hot, true), (s.cold, false)] {
            let want = s.nodes.iter().flatten().filter(|n| n.hot == is_hot).count();
            let mut seen = 0;
            let mut i = head;
            while i != super::NIL {
                seen += 1;
                assert_eq!(s.node(i).hot, is_hot);
                i = s.node(i).next;
                if i == head {
                    break;
                }
                assert!(seen <= want, "ring longer than its entries");
            }
            assert_eq!(seen, want);
        }
    }
}
