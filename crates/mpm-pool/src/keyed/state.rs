//! The keys, their idle objects and lines of waiters, and the rules that hand out objects
//! and room first come, first served across keys: what keys add to a pool. The waiters
//! themselves, the hand-off and the giving up are the [`Waiters`] both pools share: a key's
//! line holds waiter ids, a grant is handed straight to the waiter and it is woken. The
//! state is plain data, generic over what wakes a waiter, so the same code runs in the pool
//! and under the model checker in the tests.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use tokio::time::Instant;

use super::config::KeyedConfig;
use crate::stats::CloseReason;
use crate::waiters::{Waiters, Woken};

pub(super) struct KEntry<T> {
    pub(super) obj: T,
    pub(super) last_used: Instant,
}

/// What a waiter is given: an idle object, or the right to create one (a reserved place).
pub(super) enum Grant<T> {
    Object(KEntry<T>),
    Create,
}

pub(super) struct KeySlots<T> {
    pub(super) idle: VecDeque<KEntry<T>>,
    /// Idle, lent and being created.
    pub(super) size: usize,
    /// The ids of the key's waiters, first come first. A key with waiters stays in the map
    /// even with no objects (its waiters wait for room in the total).
    pub(super) waiters: VecDeque<usize>,
}

impl<T> KeySlots<T> {
    pub(super) fn new() -> Self {
        KeySlots {
            idle: VecDeque::new(),
            size: 0,
            waiters: VecDeque::new(),
        }
    }

    /// The first waiter's arrival, if the key is under its own cap with nothing idle: the
    /// waiter waits only for room in the total.
    pub(super) fn open_head<G, W>(&self, max_per_key: usize, all: &Waiters<G, W>) -> Option<u64> {
        if self.idle.is_empty() && self.size < max_per_key {
            self.waiters.front().and_then(|&id| all.seq(id))
        } else {
            None
        }
    }
}

pub(super) struct State<K, T, W> {
    pub(super) keys: HashMap<K, KeySlots<T>>,
    pub(super) total: usize,
    /// The next waiter's arrival number.
    pub(super) seq: u64,
    /// Keys whose first waiter waits for room in the total, by that waiter's arrival: the
    /// order in which freed room is handed out across keys. Entries go stale (the waiter
    /// served or gone, the key at its own cap again) and are checked when read.
    pub(super) open: VecDeque<(u64, K)>,
    pub(super) closed: bool,
    /// Every key's waiters, by id.
    pub(super) waiters: Waiters<Grant<T>, W>,
}

impl<K, T, W> State<K, T, W> {
    pub(super) fn new() -> Self {
        State {
            keys: HashMap::new(),
            total: 0,
            seq: 0,
            open: VecDeque::new(),
            closed: false,
            waiters: Waiters::default(),
        }
    }

    /// Callers waiting and not yet served.
    pub(super) fn waiting(&self) -> usize {
        self.keys.values().map(|k| k.waiters.len()).sum()
    }

    /// Empties every key's line and returns what wakes the waiters in them (the pool
    /// closed): each looks again, finds the pool closed and leaves the slab.
    pub(super) fn wake_all(&mut self, woken: &mut Woken<W>) {
        for slots in self.keys.values_mut() {
            for id in slots.waiters.drain(..) {
                woken.push(self.waiters.take_waker(id));
            }
        }
    }
}

/// Objects taken out of the state under the lock, to close after it, and why.
pub(super) type Evicted<K, T> = Vec<(K, KEntry<T>, CloseReason)>;

/// Serves `key` now if it can: its idle object, or a reserved place (after evicting another
/// key's idle object at the total cap).
pub(super) fn serve_now<K: Clone + Eq + Hash, T, W>(
    s: &mut State<K, T, W>,
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
pub(super) fn try_serve<K: Clone + Eq + Hash, T, W>(
    s: &mut State<K, T, W>,
    config: &KeyedConfig,
    key: &K,
    evicted: &mut Evicted<K, T>,
) -> Option<Grant<T>> {
    // Every waiter left in line after a dispatch could not be served; a waiter on the same
    // key came first, so a new caller on that key queues behind it. Waiters on other keys
    // wait for room in the total only when there is neither room nor an idle object to
    // evict, and then the new caller cannot be served either.
    if let Some(slots) = s.keys.get_mut(key) {
        if !slots.waiters.is_empty() {
            return None;
        }
        if let Some(e) = slots.idle.pop_front() {
            return Some(Grant::Object(e));
        }
    }
    serve_now(s, config, key, evicted)
}

/// What [`quick_take`] did.
pub(super) enum Quick<T> {
    /// Took the key's idle object.
    Idle(KEntry<T>),
    /// Queued the caller behind the key's waiters, as this waiter id.
    Queued(usize),
}

/// The common cases of a get with one lookup: behind the key's waiters if it has any, else
/// its idle object. `None` if neither applies (then [`try_serve`] and [`enqueue`] decide).
pub(super) fn quick_take<K: Clone + Eq + Hash, T, W>(
    s: &mut State<K, T, W>,
    key: &K,
) -> Option<Quick<T>> {
    let State {
        keys, waiters, seq, ..
    } = s;
    let slots = keys.get_mut(key)?;
    if slots.waiters.is_empty() {
        return slots.idle.pop_front().map(Quick::Idle);
    }
    // Not the head of its line, so not waiting only for room in the total.
    let id = waiters.insert(*seq);
    *seq += 1;
    slots.waiters.push_back(id);
    Some(Quick::Queued(id))
}

/// Returns an object of `key` with one lookup when nobody waits for room in the total: to
/// the key's first waiter (then the earliest this object can serve, as [`dispatch`] would
/// find) or to the idle queue. Gives the entry back if that does not apply.
pub(super) fn hand_to_line<K: Clone + Eq + Hash, T, W>(
    s: &mut State<K, T, W>,
    config: &KeyedConfig,
    key: &K,
    entry: KEntry<T>,
    woken: &mut Woken<W>,
) -> Result<(), KEntry<T>> {
    if !s.open.is_empty() {
        return Err(entry);
    }
    let State { keys, waiters, .. } = &mut *s;
    let Some(slots) = keys.get_mut(key) else {
        return Err(entry);
    };
    if !slots.idle.is_empty() {
        return Err(entry);
    }
    let Some(id) = slots.waiters.pop_front() else {
        // Nobody waits for it: with nobody waiting for room either, dispatch has nothing to do.
        slots.idle.push_back(entry);
        return Ok(());
    };
    match waiters.serve(id, Grant::Object(entry)) {
        Ok(waker) => woken.push(waker),
        // Not reached: every waiter in a line is in the slab.
        Err(Grant::Object(entry)) => slots.idle.push_back(entry),
        Err(Grant::Create) => {}
    }
    // The next waiter may head the line under the key's cap: then it waits for room.
    if slots.size < config.max_per_key && !slots.waiters.is_empty() {
        note_open(s, config, key);
    }
    Ok(())
}

/// Puts a caller on `key` in line; returns its waiter id.
pub(super) fn enqueue<K: Clone + Eq + Hash, T, W>(
    s: &mut State<K, T, W>,
    config: &KeyedConfig,
    key: &K,
) -> usize {
    let seq = s.seq;
    s.seq += 1;
    let id = s.waiters.insert(seq);
    let slots = s.keys.entry(key.clone()).or_insert_with(KeySlots::new);
    slots.waiters.push_back(id);
    if slots.open_head(config.max_per_key, &s.waiters) == Some(seq) {
        // The newest arrival: it goes at the back.
        s.open.push_back((seq, key.clone()));
    }
    id
}

/// The waiter `id` on `key` gives up: it leaves its key's line (and the key goes if left
/// with neither objects nor waiters), and a grant it had not picked up yet comes back for
/// the caller to pass on.
pub(super) fn cancel<K: Clone + Eq + Hash, T, W>(
    s: &mut State<K, T, W>,
    config: &KeyedConfig,
    key: &K,
    id: usize,
) -> Option<Grant<T>> {
    let grant = s.waiters.remove(id)?;
    if grant.is_none()
        && let Some(slots) = s.keys.get_mut(key)
    {
        if let Some(at) = slots.waiters.iter().position(|&w| w == id) {
            slots.waiters.remove(at);
        }
        if slots.size == 0 && slots.waiters.is_empty() {
            s.keys.remove(key);
        } else {
            // The next waiter may now head the key's line and wait for room in the total.
            note_open(s, config, key);
        }
    }
    grant
}

/// Notes `key`'s first waiter in the order of those waiting for room in the total, if it
/// waits only for that.
pub(super) fn note_open<K: Clone + Eq + Hash, T, W>(
    s: &mut State<K, T, W>,
    config: &KeyedConfig,
    key: &K,
) {
    let Some(slots) = s.keys.get(key) else {
        return;
    };
    if let Some(seq) = slots.open_head(config.max_per_key, &s.waiters) {
        let at = s.open.partition_point(|(n, _)| *n < seq);
        if s.open.get(at).is_none_or(|(n, _)| *n != seq) {
            s.open.insert(at, (seq, key.clone()));
        }
    }
}

/// The earliest waiter that waits only for room in the total: its arrival and key. Drops
/// stale entries on the way.
pub(super) fn first_open<K: Clone + Eq + Hash, T, W>(
    s: &mut State<K, T, W>,
    config: &KeyedConfig,
) -> Option<(u64, K)> {
    loop {
        let (seq, key) = s.open.front()?;
        let head = s
            .keys
            .get(key)
            .and_then(|slots| slots.open_head(config.max_per_key, &s.waiters));
        let seq = *seq;
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
/// Waiters that cannot be served stay in line; those served are added to `woken`.
pub(super) fn dispatch<K: Clone + Eq + Hash, T, W>(
    s: &mut State<K, T, W>,
    config: &KeyedConfig,
    key: Option<&K>,
    evicted: &mut Evicted<K, T>,
    woken: &mut Woken<W>,
) {
    if s.closed {
        // Nothing is handed out any more: the waiters leave with `Closed`.
        return;
    }
    loop {
        // The released key's first waiter, if there is an idle object for it.
        let local = key.and_then(|k| {
            let slots = s.keys.get(k)?;
            if slots.idle.is_empty() {
                return None;
            }
            slots.waiters.front().and_then(|&id| s.waiters.seq(id))
        });
        let open = first_open(s, config);
        let served = match (local, open) {
            (Some(l), Some((o, okey))) if o < l => {
                serve_first(s, config, &okey, evicted, woken)
                    || key.is_some_and(|k| serve_first(s, config, k, evicted, woken))
            }
            (Some(_), _) => key.is_some_and(|k| serve_first(s, config, k, evicted, woken)),
            (None, Some((_, okey))) => serve_first(s, config, &okey, evicted, woken),
            (None, None) => false,
        };
        if !served {
            return;
        }
    }
}

/// Serves `key`'s first waiter if it can; says whether it did.
pub(super) fn serve_first<K: Clone + Eq + Hash, T, W>(
    s: &mut State<K, T, W>,
    config: &KeyedConfig,
    key: &K,
    evicted: &mut Evicted<K, T>,
    woken: &mut Woken<W>,
) -> bool {
    if s.keys.get(key).is_none_or(|slots| slots.waiters.is_empty()) {
        return false;
    }
    let Some(grant) = serve_now(s, config, key, evicted) else {
        return false;
    };
    let id = s
        .keys
        .get_mut(key)
        .and_then(|slots| slots.waiters.pop_front());
    let served = match id {
        // Every waiter in a line is in the slab (one that gives up leaves its line too).
        Some(id) => s.waiters.serve(id, grant),
        None => Err(grant),
    };
    match served {
        Ok(waker) => woken.push(waker),
        Err(grant) => {
            // Not reached: nothing was handed, so take it back and say so.
            undo(s, config, key, grant);
            return false;
        }
    }
    note_open(s, config, key);
    true
}

/// Takes back a grant that was not handed over.
pub(super) fn undo<K: Clone + Eq + Hash, T, W>(
    s: &mut State<K, T, W>,
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
pub(super) fn forget_one<K: Clone + Eq + Hash, T, W>(
    s: &mut State<K, T, W>,
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
        if slots.size == 0 && slots.waiters.is_empty() {
            s.keys.remove(key);
        } else {
            note_open(s, config, key);
        }
    }
}

/// Drops the keys left with neither objects nor waiters.
pub(super) fn retain_keys<K, T, W>(s: &mut State<K, T, W>) {
    s.keys.retain(|_, k| k.size > 0 || !k.waiters.is_empty());
}

#[cfg(test)]
mod tests {
    //! A shuttle model of the keyed bookkeeping: threads on three keys take, wait in their
    //! key's line or for room in the total, create (one failing once), discard and return
    //! objects through the state's functions in every interleaving shuttle picks, one of
    //! them giving up its wait, and in a second model a thread closing the pool. The counts
    //! must balance at every step and at the end, every patient caller is served (or told the
    //! pool closed), nobody is left waiting, and a closed pool keeps nothing.

    use super::{
        Evicted, Grant, KEntry, Quick, State, cancel, dispatch, enqueue, forget_one, hand_to_line,
        quick_take, try_serve,
    };
    use crate::keyed::config::KeyedConfig;
    use crate::waiters::Woken;
    use shuttle::sync::{Condvar, Mutex};
    use std::sync::Arc;
    use tokio::time::Instant;

    /// The pool's lock and a condition variable standing in for the wakers (`W = ()`: every
    /// change wakes everyone, who look again).
    struct Pool {
        state: Mutex<State<u8, u32, ()>>,
        changed: Condvar,
        config: KeyedConfig,
    }

    fn check(s: &State<u8, u32, ()>, config: &KeyedConfig) {
        let sizes: usize = s.keys.values().map(|k| k.size).sum();
        assert_eq!(sizes, s.total, "the keys' sizes add up to the total");
        assert!(s.total <= config.max_total);
        for k in s.keys.values() {
            assert!(k.size <= config.max_per_key);
            assert!(k.idle.len() <= k.size);
            assert!(k.size > 0 || !k.waiters.is_empty(), "an empty key stayed");
        }
    }

    impl Pool {
        /// As `KeyedPool::get_timeout`: a grant, or `None` if this waiter gave up.
        fn get(&self, key: u8, give_up: bool) -> Option<Grant<u32>> {
            let c = &self.config;
            let mut s = self.state.lock().unwrap();
            if s.closed {
                return None;
            }
            let mut evicted: Evicted<u8, u32> = Vec::new();
            let id = match quick_take(&mut s, &key) {
                Some(Quick::Queued(id)) => id,
                Some(Quick::Idle(e)) => {
                    check(&s, c);
                    return Some(Grant::Object(e));
                }
                None => match try_serve(&mut s, c, &key, &mut evicted) {
                    Some(g) => {
                        check(&s, c);
                        return Some(g);
                    }
                    None => enqueue(&mut s, c, &key),
                },
            };
            loop {
                if let Some(g) = s.waiters.granted(id) {
                    check(&s, c);
                    return Some(g);
                }
                if give_up || s.closed {
                    // As the wait's drop guard: a grant that raced in is passed on.
                    let mut woken = Woken::default();
                    let mut local = None;
                    match cancel(&mut s, c, &key, id) {
                        None => {}
                        Some(Grant::Object(e)) => {
                            if let Some(slots) = s.keys.get_mut(&key) {
                                slots.idle.push_front(e);
                                local = Some(&key);
                            }
                        }
                        Some(Grant::Create) => forget_one(&mut s, c, &key),
                    }
                    dispatch(&mut s, c, local, &mut evicted, &mut woken);
                    check(&s, c);
                    drop(s);
                    self.changed.notify_all();
                    return None;
                }
                s = self.changed.wait(s).unwrap();
            }
        }

        /// As `Inner::release` and `Inner::close_lent`.
        fn put(&self, key: u8, obj: u32, discard: bool) {
            let c = &self.config;
            let mut s = self.state.lock().unwrap();
            let mut evicted = Vec::new();
            let mut woken = Woken::default();
            let mut local = None;
            let entry = KEntry {
                obj,
                last_used: Instant::now(),
            };
            if discard || s.closed {
                forget_one(&mut s, c, &key);
            } else if let Err(entry) = hand_to_line(&mut s, c, &key, entry, &mut woken)
                && let Some(slots) = s.keys.get_mut(&key)
            {
                slots.idle.push_back(entry);
                if !slots.waiters.is_empty() {
                    local = Some(&key);
                }
            }
            dispatch(&mut s, c, local, &mut evicted, &mut woken);
            check(&s, c);
            drop(s);
            self.changed.notify_all();
        }

        /// A failed creation frees its place (as the reservation guard).
        fn fail_create(&self, key: u8) {
            let c = &self.config;
            let mut s = self.state.lock().unwrap();
            forget_one(&mut s, c, &key);
            dispatch(&mut s, c, None, &mut Vec::new(), &mut Woken::default());
            check(&s, c);
            drop(s);
            self.changed.notify_all();
        }
    }

    /// One user of `key`: `fail_create` makes its first creation fail, `discard` closes what
    /// it got, `give_up` leaves a wait at its first look.
    fn user(pool: &Pool, key: u8, fail_create: bool, discard: bool, give_up: bool) -> bool {
        let mut failed_once = false;
        loop {
            match pool.get(key, give_up) {
                None => return false,
                Some(Grant::Object(e)) => {
                    pool.put(key, e.obj, discard);
                    return true;
                }
                Some(Grant::Create) if fail_create && !failed_once => {
                    failed_once = true;
                    pool.fail_create(key);
                }
                Some(Grant::Create) => {
                    pool.put(key, 7, discard);
                    return true;
                }
            }
        }
    }

    /// As `KeyedPool::close`.
    fn close(pool: &Pool) {
        let mut s = pool.state.lock().unwrap();
        s.closed = true;
        s.open.clear();
        s.wake_all(&mut Woken::default());
        let mut removed = 0;
        for slots in s.keys.values_mut() {
            while slots.idle.pop_front().is_some() {
                slots.size -= 1;
                removed += 1;
            }
        }
        s.total -= removed;
        s.keys.retain(|_, k| k.size > 0);
        check(&s, &pool.config);
        drop(s);
        pool.changed.notify_all();
    }

    fn model(closing: bool) {
        let pool = Arc::new(Pool {
            state: Mutex::new(State::new()),
            changed: Condvar::new(),
            config: KeyedConfig {
                max_per_key: 1,
                max_total: 2,
                ..KeyedConfig::default()
            },
        });
        let mut threads = Vec::new();
        for (key, fail_create, discard, give_up) in [
            (0, false, false, false),
            (1, true, false, false),
            (2, false, true, false),
            (0, false, false, true),
        ] {
            let pool = Arc::clone(&pool);
            threads.push(shuttle::thread::spawn(move || {
                for _ in 0..2 {
                    let served = user(&pool, key, fail_create, discard, give_up);
                    assert!(
                        served || give_up || closing,
                        "a patient caller was not served"
                    );
                }
            }));
        }
        if closing {
            let pool = Arc::clone(&pool);
            threads.push(shuttle::thread::spawn(move || close(&pool)));
        }
        for t in threads {
            t.join().unwrap();
        }
        let s = pool.state.lock().unwrap();
        check(&s, &pool.config);
        assert_eq!(s.waiting(), 0);
        let idle: usize = s.keys.values().map(|k| k.idle.len()).sum();
        assert_eq!(idle, s.total, "every object is back");
        if closing {
            assert_eq!(s.total, 0, "a closed pool keeps nothing");
            assert!(s.keys.is_empty());
        }
    }

    #[test]
    fn keyed_bookkeeping_balances_in_every_interleaving_explored() {
        shuttle::check_random(|| model(false), 2_000);
        shuttle::check_pct(|| model(false), 2_000, 3);
    }

    #[test]
    fn a_closed_keyed_pool_serves_nobody_and_keeps_nothing() {
        shuttle::check_random(|| model(true), 2_000);
        shuttle::check_pct(|| model(true), 2_000, 3);
    }
}
