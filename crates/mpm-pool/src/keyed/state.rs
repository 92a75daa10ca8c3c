//! The keys, their idle objects and waiters, and the rules that hand out objects and room
//! first come, first served across keys: what keys add to a pool.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::config::KeyedConfig;
use crate::stats::CloseReason;

pub(super) struct KEntry<T> {
    pub(super) obj: T,
    pub(super) last_used: Instant,
}

/// What a waiter is given: an idle object, or the right to create one (a reserved place).
pub(super) enum Grant<T> {
    Object(KEntry<T>),
    Create,
}

pub(super) struct Waiter<T> {
    /// The order of arrival across all keys.
    pub(super) seq: u64,
    pub(super) tx: oneshot::Sender<Grant<T>>,
}

pub(super) struct KeySlots<T> {
    pub(super) idle: VecDeque<KEntry<T>>,
    /// Idle, lent and being created.
    pub(super) size: usize,
    /// The key's waiters, first come first. A key with waiters stays in the map even with
    /// no objects (its waiters wait for room in the total).
    pub(super) waiters: VecDeque<Waiter<T>>,
}

impl<T> KeySlots<T> {
    pub(super) fn new() -> Self {
        KeySlots {
            idle: VecDeque::new(),
            size: 0,
            waiters: VecDeque::new(),
        }
    }

    /// Drops the cancelled and timed-out waiters at the head of the line.
    pub(super) fn purge(&mut self) {
        while self.waiters.front().is_some_and(|w| w.tx.is_closed()) {
            self.waiters.pop_front();
        }
    }

    /// The first waiter's arrival, if the key is under its own cap with nothing idle: the
    /// waiter waits only for room in the total.
    pub(super) fn open_head(&self, max_per_key: usize) -> Option<u64> {
        if self.idle.is_empty() && self.size < max_per_key {
            self.waiters.front().map(|w| w.seq)
        } else {
            None
        }
    }
}

pub(super) struct State<K, T> {
    pub(super) keys: HashMap<K, KeySlots<T>>,
    pub(super) total: usize,
    /// The next waiter's arrival number.
    pub(super) seq: u64,
    /// Keys whose first waiter waits for room in the total, by that waiter's arrival: the
    /// order in which freed room is handed out across keys. Entries go stale (the waiter
    /// served or gone, the key at its own cap again) and are checked when read.
    pub(super) open: VecDeque<(u64, K)>,
    pub(super) closed: bool,
}

/// Objects taken out of the state under the lock, to close after it, and why.
pub(super) type Evicted<K, T> = Vec<(K, KEntry<T>, CloseReason)>;

/// Serves `key` now if it can: its idle object, or a reserved place (after evicting another
/// key's idle object at the total cap).
pub(super) fn serve_now<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
    key: &K,
    evicted: &mut Evicted<K, T>,
) -> Option<Grant<T>> {
    if let Some(slots) = s.keys.get_mut(key) {
        if let Some(e) = slots.idle.pop_front() {
            return Some(Grant::Object(e));
        }
        if slots.size >= config.max_per_key {
            return None;
        }
    }
    if s.total >= config.max_total {
        // Evict the idle object unused longest among the other keys.
        let victim = s
            .keys
            .iter()
            .filter(|(k, v)| *k != key && !v.idle.is_empty())
            .min_by_key(|(_, v)| v.idle.front().map(|e| e.last_used))
            .map(|(k, _)| k.clone())?;
        let slots = s.keys.get_mut(&victim)?;
        let e = slots.idle.pop_front()?;
        slots.size -= 1;
        let gone = slots.size == 0 && slots.waiters.is_empty();
        s.total -= 1;
        if gone {
            s.keys.remove(&victim);
        } else {
            // The victim's own waiters (later than the one served) now wait for room.
            note_open(s, config, &victim);
        }
        evicted.push((victim, e, CloseReason::Evicted));
    }
    let slots = s.keys.entry(key.clone()).or_insert_with(KeySlots::new);
    slots.size += 1;
    s.total += 1;
    Some(Grant::Create)
}

/// Serves a new caller: only if nobody waiting could be served first.
pub(super) fn try_serve<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
    key: &K,
    evicted: &mut Evicted<K, T>,
) -> Option<Grant<T>> {
    // Every waiter left in line after a dispatch could not be served; a waiter on the same
    // key came first, so a new caller on that key queues behind it. Waiters on other keys
    // wait for room in the total only when there is neither room nor an idle object to
    // evict, and then the new caller cannot be served either.
    if let Some(slots) = s.keys.get_mut(key) {
        slots.purge();
        if !slots.waiters.is_empty() {
            return None;
        }
        if let Some(e) = slots.idle.pop_front() {
            return Some(Grant::Object(e));
        }
    }
    serve_now(s, config, key, evicted)
}

/// Puts a caller on `key` in line.
pub(super) fn enqueue<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
    key: &K,
    tx: oneshot::Sender<Grant<T>>,
) {
    let seq = s.seq;
    s.seq += 1;
    let slots = s.keys.entry(key.clone()).or_insert_with(KeySlots::new);
    slots.waiters.push_back(Waiter { seq, tx });
    if slots.open_head(config.max_per_key) == Some(seq) {
        // The newest arrival: it goes at the back.
        s.open.push_back((seq, key.clone()));
    }
}

/// Notes `key`'s first waiter in the order of those waiting for room in the total, if it
/// waits only for that.
pub(super) fn note_open<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
    key: &K,
) {
    let Some(slots) = s.keys.get_mut(key) else {
        return;
    };
    slots.purge();
    if let Some(seq) = slots.open_head(config.max_per_key) {
        let at = s.open.partition_point(|(n, _)| *n < seq);
        if s.open.get(at).is_none_or(|(n, _)| *n != seq) {
            s.open.insert(at, (seq, key.clone()));
        }
    }
}

/// The earliest waiter that waits only for room in the total: its arrival and key. Drops
/// stale entries on the way.
pub(super) fn first_open<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
) -> Option<(u64, K)> {
    loop {
        let (seq, key) = s.open.front()?;
        let (seq, head) = match s.keys.get_mut(key) {
            Some(slots) => {
                slots.purge();
                (*seq, slots.open_head(config.max_per_key))
            }
            None => (*seq, None),
        };
        match head {
            Some(h) if h == seq => return s.open.front().cloned(),
            Some(h) => {
                // The key's first waiter went away; the next one takes its place in order.
                if let Some((_, key)) = s.open.pop_front() {
                    let at = s.open.partition_point(|(n, _)| *n < h);
                    if s.open.get(at).is_none_or(|(n, _)| *n != h) {
                        s.open.insert(at, (h, key));
                    }
                }
            }
            None => {
                s.open.pop_front();
            }
        }
    }
}

/// Hands what can be handed to the waiters, first come first served across keys: `key`'s
/// waiters if an object of `key` went idle, and those waiting for room in the total.
/// Waiters that cannot be served stay in line.
pub(super) fn dispatch<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
    key: Option<&K>,
    evicted: &mut Evicted<K, T>,
) {
    loop {
        // The released key's first waiter, if there is an idle object for it.
        let local = key.and_then(|k| {
            let slots = s.keys.get_mut(k)?;
            slots.purge();
            if slots.idle.is_empty() {
                return None;
            }
            slots.waiters.front().map(|w| w.seq)
        });
        let open = first_open(s, config);
        let served = match (local, open) {
            (Some(l), Some((o, okey))) if o < l => {
                serve_first(s, config, &okey, evicted)
                    || key.is_some_and(|k| serve_first(s, config, k, evicted))
            }
            (Some(_), _) => key.is_some_and(|k| serve_first(s, config, k, evicted)),
            (None, Some((_, okey))) => serve_first(s, config, &okey, evicted),
            (None, None) => false,
        };
        if !served {
            return;
        }
    }
}

/// Serves `key`'s first waiter if it can; says whether it did.
pub(super) fn serve_first<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
    key: &K,
    evicted: &mut Evicted<K, T>,
) -> bool {
    let Some(grant) = serve_now(s, config, key, evicted) else {
        return false;
    };
    let waiter = s
        .keys
        .get_mut(key)
        .and_then(|slots| slots.waiters.pop_front());
    match waiter {
        Some(w) => {
            if let Err(grant) = w.tx.send(grant) {
                undo(s, config, key, grant);
            }
        }
        None => {
            // Not reached: the caller saw the waiter. Nothing was handed, so say so.
            undo(s, config, key, grant);
            return false;
        }
    }
    note_open(s, config, key);
    true
}

/// Takes back a grant that could not be delivered.
pub(super) fn undo<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
    key: &K,
    grant: Grant<T>,
) {
    match grant {
        Grant::Object(e) => {
            if let Some(slots) = s.keys.get_mut(key) {
                slots.idle.push_front(e);
            }
        }
        Grant::Create => forget_one(s, config, key),
    }
}

/// One object of `key` (lent or reserved) left the pool. A count that would go below zero
/// is a bookkeeping bug: caught in debug builds (the tests), saturated in release builds.
pub(super) fn forget_one<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
    key: &K,
) {
    debug_assert!(s.total > 0, "keyed pool total underflow");
    debug_assert!(
        s.keys.get(key).is_some_and(|k| k.size > 0),
        "keyed pool: an object left a key that has none"
    );
    s.total = s.total.saturating_sub(1);
    if let Some(slots) = s.keys.get_mut(key) {
        slots.size = slots.size.saturating_sub(1);
        slots.purge();
        if slots.size == 0 && slots.waiters.is_empty() {
            s.keys.remove(key);
        } else {
            note_open(s, config, key);
        }
    }
}

/// Drops the keys left with neither objects nor waiters (and the gone waiters).
pub(super) fn retain_keys<K, T>(s: &mut State<K, T>) {
    s.keys.retain(|_, k| {
        k.waiters.retain(|w| !w.tx.is_closed());
        k.size > 0 || !k.waiters.is_empty()
    });
}
