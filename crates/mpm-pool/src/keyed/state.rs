//! The keys, their idle objects and lines of waiters, and the rules that hand out objects
//! and room first come, first served across keys: what keys add to a pool. The waiters
//! themselves, the hand-off and the giving up are the [`Waiters`] both pools share: a key's
//! line holds waiter ids, a grant is handed straight to the waiter and it is woken.
//!
//! # Locks
//!
//! Each key has its own lock over its idle objects, its size and its line of waiters, and the
//! keys sit in a map behind a readers-writer lock. What spans keys (the total, and the order
//! in which waiters wait for room in it) sits behind one more lock, the room's. The common
//! cases take only the map's read lock and one key's lock, as a pool per key would: a get
//! that finds an idle object, a get that queues behind its key's line (or at its key's cap),
//! and a release that hands its object to its key's first waiter or leaves it idle. Anything
//! that changes a size or the total (a creation, an object closed, an eviction at the total
//! cap), a waiter that gives up, and a release while somebody waits for room in the total
//! takes the room's lock first. Locks are taken in the order room, map, keys; only the room's
//! holder holds two keys' locks at once, and nobody waits for the map while holding a key.
//!
//! A release must not leave an object idle while somebody waits for room that evicting it
//! would give. The room's holder sets `contended` before it looks at any key and clears it
//! when it leaves with nobody waiting for room; a release reads it under its key's lock, so
//! either the room's holder sees the idle object when it looks at that key, or the release
//! sees `contended` and takes the room's lock (whose holder then hands the object on).
//!
//! The state is generic over the locks and over what wakes a waiter, so the same code runs
//! in the pool and under the model checker in the tests.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::ops::DerefMut;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::locks::{Lock, Locking, ReadWrite};
use crate::clock::{Ms, NEVER};
use crate::stats::CloseReason;
use crate::waiters::{Waiters, Woken};

pub(super) struct KEntry<T> {
    pub(super) obj: T,
    /// When (on the pool's coarse clock) it was created or last returned.
    pub(super) last_used: Ms,
    /// A raw TSC reading taken at the same time ([`Clock::raw`](crate::clock::Clock::raw)):
    /// the coarse clock's ticks are too far apart to tell which of two keys' objects has been
    /// idle longer, which the eviction at the total cap must.
    pub(super) order: u64,
}

/// What a waiter is given: an idle object, or the right to create one (a reserved place).
pub(super) enum Grant<T> {
    Object(KEntry<T>),
    Create,
}

/// One key: its idle objects, its size and its line of waiters.
pub(super) struct KeyState<T, W> {
    pub(super) idle: VecDeque<KEntry<T>>,
    /// Idle, lent and being created.
    pub(super) size: usize,
    /// The ids of the key's waiters, first come first. A key with waiters stays in the map
    /// even with no objects (its waiters wait for room in the total).
    pub(super) line: VecDeque<usize>,
    /// The key's waiters, by id.
    pub(super) waiters: Waiters<Grant<T>, W>,
}

impl<T, W> KeyState<T, W> {
    fn new() -> Self {
        KeyState {
            idle: VecDeque::new(),
            size: 0,
            line: VecDeque::new(),
            waiters: Waiters::default(),
        }
    }

    /// The first waiter's arrival, if the key is under its own cap with nothing idle: the
    /// waiter waits only for room in the total.
    fn open_head(&self, max_per_key: usize) -> Option<u64> {
        if self.idle.is_empty() && self.size < max_per_key {
            self.line.front().and_then(|&id| self.waiters.seq(id))
        } else {
            None
        }
    }

    /// Neither objects nor waiters in line: the key can go.
    fn is_empty(&self) -> bool {
        self.size == 0 && self.line.is_empty()
    }

    /// Puts a caller in line with what wakes it; returns its waiter id.
    fn enqueue(&mut self, seq: u64, waker: W) -> usize {
        let id = self.waiters.insert(seq);
        self.waiters.set_waker(id, |_| false, || waker);
        self.line.push_back(id);
        id
    }
}

/// A key's state behind its lock, shared by the map, its lent objects and its waiters.
pub(super) type Slot<T, W, L> = Arc<<L as Locking>::Mutex<KeyState<T, W>>>;

/// What spans keys, behind the room's lock.
struct Room<T, W, L: Locking> {
    /// Objects in total: idle, lent and being created.
    total: usize,
    /// Keys whose first waiter waits for room in the total, by that waiter's arrival: the
    /// order in which freed room is handed out across keys. Entries go stale (the waiter
    /// served or gone, the key at its own cap again) and are checked when read.
    open: VecDeque<(u64, Slot<T, W, L>)>,
}

/// Objects taken out of the state, to close once the locks are released, and why.
pub(super) type Evicted<K, T> = Vec<(K, KEntry<T>, CloseReason)>;

/// What a get found.
pub(super) enum Got<T, W, L: Locking> {
    /// Served: an idle object or a reserved place, on this key.
    Served(Slot<T, W, L>, Grant<T>),
    /// In line on this key as this waiter id.
    Wait(Slot<T, W, L>, usize),
    /// The pool is closed.
    Closed,
}

/// A waiter's look at its grant.
pub(super) enum Look<T> {
    Granted(Grant<T>),
    Closed,
    Pending,
}

/// A snapshot of the counts.
pub(super) struct Counts {
    pub(super) keys: usize,
    pub(super) total: usize,
    pub(super) idle: usize,
    pub(super) waiting: usize,
}

/// The keyed pool's state: the keys' map, the room and the flags read without a lock.
pub(super) struct Table<K, T, W, L: Locking> {
    max_per_key: usize,
    max_total: usize,
    keys: L::RwLock<HashMap<K, Slot<T, W, L>>>,
    room: L::Mutex<Room<T, W, L>>,
    /// Somebody waits, or may be about to wait, for room in the total: a release takes the
    /// room's lock (see the module doc).
    contended: AtomicBool,
    closed: AtomicBool,
    /// The next waiter's arrival number.
    seq: AtomicU64,
}

impl<K: Clone + Eq + Hash, T, W, L: Locking> Table<K, T, W, L> {
    pub(super) fn new(max_per_key: usize, max_total: usize) -> Self {
        Table {
            max_per_key,
            max_total,
            keys: ReadWrite::new(HashMap::new()),
            room: Lock::new(Room {
                total: 0,
                open: VecDeque::new(),
            }),
            contended: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            seq: AtomicU64::new(0),
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Takes the room's lock and says so to releases (before looking at any key).
    fn enter(&self) -> impl DerefMut<Target = Room<T, W, L>> + '_ {
        let room = self.room.lock();
        self.contended.store(true, Ordering::SeqCst);
        room
    }

    /// Before the room's lock is released: drops the keys of `empties` left with neither
    /// objects nor waiters, and lets releases go by without the room's lock again if nobody
    /// waits for room.
    fn leave(&self, room: &Room<T, W, L>, empties: &[K]) {
        if !empties.is_empty() {
            let mut map = self.keys.write();
            for key in empties {
                if map.get(key).is_some_and(|slot| slot.lock().is_empty()) {
                    map.remove(key);
                }
            }
        }
        self.contended
            .store(!room.open.is_empty(), Ordering::SeqCst);
    }

    /// Gets an object for `key`: its idle object, a reserved place (after evicting another
    /// key's idle object at the total cap), or a place in its line, woken by `waker`.
    pub(super) fn get(
        &self,
        key: &K,
        waker: impl FnOnce() -> W,
        evicted: &mut Evicted<K, T>,
    ) -> Got<T, W, L> {
        {
            let map = self.keys.read();
            if let Some(slot) = map.get(key) {
                let mut k = slot.lock();
                if self.is_closed() {
                    return Got::Closed;
                }
                // Behind the key's waiters, or at the key's cap with nothing idle: in line,
                // not waiting for room in the total (its key has no room of its own).
                if !k.line.is_empty() || (k.idle.is_empty() && k.size >= self.max_per_key) {
                    let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                    let id = k.enqueue(seq, waker());
                    return Got::Wait(Arc::clone(slot), id);
                }
                if let Some(e) = k.idle.pop_front() {
                    return Got::Served(Arc::clone(slot), Grant::Object(e));
                }
            }
        }
        self.get_slow(key, waker, evicted)
    }

    /// A get that may need room in the total, or a new key.
    fn get_slow(
        &self,
        key: &K,
        waker: impl FnOnce() -> W,
        evicted: &mut Evicted<K, T>,
    ) -> Got<T, W, L> {
        let mut room = self.enter();
        if self.is_closed() {
            self.leave(&room, &[]);
            return Got::Closed;
        }
        let existing = self.keys.read().get(key).cloned();
        let slot = existing.unwrap_or_else(|| {
            let mut map = self.keys.write();
            Arc::clone(
                map.entry(key.clone())
                    .or_insert_with(|| Arc::new(Lock::new(KeyState::new()))),
            )
        });
        let mut empties = Vec::new();
        let got = {
            let map = self.keys.read();
            // Every waiter left in line after a dispatch could not be served; a waiter on the
            // same key came first, so a new caller on that key queues behind it.
            let quick = {
                let mut k = slot.lock();
                if !k.line.is_empty() || (k.idle.is_empty() && k.size >= self.max_per_key) {
                    None
                } else if let Some(e) = k.idle.pop_front() {
                    Some(Grant::Object(e))
                } else if room.total < self.max_total {
                    k.size += 1;
                    room.total += 1;
                    Some(Grant::Create)
                } else {
                    None
                }
            };
            let grant = match quick {
                Some(g) => Some(g),
                None => {
                    let under_cap = {
                        let k = slot.lock();
                        k.line.is_empty() && k.idle.is_empty() && k.size < self.max_per_key
                    };
                    if under_cap {
                        self.evict_for(&mut room, &map, &slot, evicted, &mut empties)
                    } else {
                        None
                    }
                }
            };
            match grant {
                Some(g) => Got::Served(Arc::clone(&slot), g),
                None => {
                    let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                    let id = slot.lock().enqueue(seq, waker());
                    note_open(&mut room, &slot, self.max_per_key);
                    Got::Wait(Arc::clone(&slot), id)
                }
            }
        };
        self.leave(&room, &empties);
        got
    }

    /// At the total cap, closes the idle object unused longest among the other keys to make
    /// room for one on `slot` (reserved); `None` if there is none.
    fn evict_for(
        &self,
        room: &mut Room<T, W, L>,
        map: &HashMap<K, Slot<T, W, L>>,
        slot: &Slot<T, W, L>,
        evicted: &mut Evicted<K, T>,
        empties: &mut Vec<K>,
    ) -> Option<Grant<T>> {
        loop {
            let mut best: Option<(&K, &Slot<T, W, L>, u64)> = None;
            for (k, s) in map {
                if Arc::ptr_eq(s, slot) {
                    continue;
                }
                let at = s.lock().idle.front().map(|e| e.order);
                if let Some(at) = at
                    && best.is_none_or(|(_, _, b)| at < b)
                {
                    best = Some((k, s, at));
                }
            }
            let (victim, vslot, _) = best?;
            let taken = {
                let mut v = vslot.lock();
                let e = v.idle.pop_front();
                if e.is_some() {
                    v.size -= 1;
                }
                e.map(|e| (e, v.is_empty()))
            };
            // A get took it meanwhile: look again.
            let Some((e, gone)) = taken else { continue };
            if gone {
                empties.push(victim.clone());
            } else {
                // The victim's own waiters (later than the one served) now wait for room.
                note_open(room, vslot, self.max_per_key);
            }
            evicted.push((victim.clone(), e, CloseReason::Evicted));
            slot.lock().size += 1;
            return Some(Grant::Create);
        }
    }

    /// Serves `slot` now if it can: its idle object, or a reserved place (after evicting
    /// another key's idle object at the total cap).
    fn serve_now(
        &self,
        room: &mut Room<T, W, L>,
        map: &HashMap<K, Slot<T, W, L>>,
        slot: &Slot<T, W, L>,
        evicted: &mut Evicted<K, T>,
        empties: &mut Vec<K>,
    ) -> Option<Grant<T>> {
        {
            let mut k = slot.lock();
            if let Some(e) = k.idle.pop_front() {
                return Some(Grant::Object(e));
            }
            if k.size >= self.max_per_key {
                return None;
            }
            if room.total < self.max_total {
                k.size += 1;
                room.total += 1;
                return Some(Grant::Create);
            }
        }
        self.evict_for(room, map, slot, evicted, empties)
    }

    /// Serves `slot`'s first waiter if it can; says whether it did.
    fn serve_first(
        &self,
        room: &mut Room<T, W, L>,
        map: &HashMap<K, Slot<T, W, L>>,
        slot: &Slot<T, W, L>,
        evicted: &mut Evicted<K, T>,
        woken: &mut Woken<W>,
        empties: &mut Vec<K>,
    ) -> bool {
        if slot.lock().line.is_empty() {
            return false;
        }
        let Some(grant) = self.serve_now(room, map, slot, evicted, empties) else {
            return false;
        };
        {
            let mut k = slot.lock();
            let KeyState {
                line,
                waiters,
                idle,
                size,
                ..
            } = &mut *k;
            // Every waiter in a line is in the slab (one that gives up leaves its line too),
            // and only the room's holder takes a line's first waiter while it waits for room.
            let served = match line.pop_front() {
                Some(id) => waiters.serve(id, grant),
                None => Err(grant),
            };
            match served {
                Ok(waker) => woken.push(waker),
                Err(g) => {
                    // Not reached: nothing was handed, so take it back and say so.
                    match g {
                        Grant::Object(e) => idle.push_front(e),
                        Grant::Create => {
                            *size -= 1;
                            room.total -= 1;
                        }
                    }
                    return false;
                }
            }
        }
        note_open(room, slot, self.max_per_key);
        true
    }

    /// Hands what can be handed to the waiters, first come first served across keys:
    /// `local`'s waiters if an object of it went idle, and those waiting for room in the
    /// total. Waiters that cannot be served stay in line; those served are added to `woken`.
    fn dispatch(
        &self,
        room: &mut Room<T, W, L>,
        map: &HashMap<K, Slot<T, W, L>>,
        local: Option<&Slot<T, W, L>>,
        evicted: &mut Evicted<K, T>,
        woken: &mut Woken<W>,
        empties: &mut Vec<K>,
    ) {
        if self.is_closed() {
            // Nothing is handed out any more: the waiters leave with `Closed`.
            return;
        }
        loop {
            // The released key's first waiter, if there is an idle object for it.
            let first = local.and_then(|slot| {
                let k = slot.lock();
                if k.idle.is_empty() {
                    return None;
                }
                k.line.front().and_then(|&id| k.waiters.seq(id))
            });
            let open = first_open(room, self.max_per_key);
            let served = match (first, open, local) {
                (Some(l), Some((o, oslot)), Some(local)) if o < l => {
                    self.serve_first(room, map, &oslot, evicted, woken, empties)
                        || self.serve_first(room, map, local, evicted, woken, empties)
                }
                (Some(_), _, Some(local)) => {
                    self.serve_first(room, map, local, evicted, woken, empties)
                }
                (None, Some((_, oslot)), _) => {
                    self.serve_first(room, map, &oslot, evicted, woken, empties)
                }
                _ => false,
            };
            if !served {
                return;
            }
        }
    }

    /// Waiter `id` of `slot` looks for its grant; else sets what wakes it (`same` says
    /// whether the one it has is that already).
    pub(super) fn look(
        &self,
        slot: &Slot<T, W, L>,
        id: usize,
        same: impl Fn(&W) -> bool,
        make: impl FnOnce() -> W,
    ) -> Look<T> {
        let mut k = slot.lock();
        if let Some(grant) = k.waiters.granted(id) {
            return Look::Granted(grant);
        }
        if self.is_closed() {
            return Look::Closed;
        }
        k.waiters.set_waker(id, same, make);
        Look::Pending
    }

    /// Waiter `id` on `key` leaves: its key's line (and the key goes if left with neither
    /// objects nor waiters); a grant it had not picked up yet comes back for it to use.
    pub(super) fn cancel(&self, key: &K, slot: &Slot<T, W, L>, id: usize) -> Option<Grant<T>> {
        let mut room = self.enter();
        let mut empties = Vec::new();
        let grant = self.leave_line(&mut room, key, slot, id, &mut empties);
        self.leave(&room, &empties);
        grant
    }

    fn leave_line(
        &self,
        room: &mut Room<T, W, L>,
        key: &K,
        slot: &Slot<T, W, L>,
        id: usize,
        empties: &mut Vec<K>,
    ) -> Option<Grant<T>> {
        let mut k = slot.lock();
        let grant = k.waiters.remove(id)?;
        if grant.is_none() {
            if let Some(at) = k.line.iter().position(|&w| w == id) {
                k.line.remove(at);
            }
            if k.is_empty() {
                empties.push(key.clone());
            } else {
                // The next waiter may now head the key's line and wait for room in the total.
                drop(k);
                note_open(room, slot, self.max_per_key);
            }
        }
        grant
    }

    /// Waiter `id` on `key` gives up (cancelled, timed out, or the pool closed): it leaves
    /// its line, and an object or room it was handed meanwhile goes to the next waiter.
    pub(super) fn give_up(
        &self,
        key: &K,
        slot: &Slot<T, W, L>,
        id: usize,
        evicted: &mut Evicted<K, T>,
        woken: &mut Woken<W>,
    ) {
        let mut room = self.enter();
        let mut empties = Vec::new();
        let grant = self.leave_line(&mut room, key, slot, id, &mut empties);
        let mut local = None;
        match grant {
            None => {}
            Some(Grant::Object(e)) => {
                if self.is_closed() {
                    self.forget_locked(&mut room, key, slot, &mut empties);
                    evicted.push((key.clone(), e, CloseReason::Shutdown));
                } else {
                    slot.lock().idle.push_front(e);
                    local = Some(slot);
                }
            }
            Some(Grant::Create) => self.forget_locked(&mut room, key, slot, &mut empties),
        }
        {
            let map = self.keys.read();
            self.dispatch(&mut room, &map, local, evicted, woken, &mut empties);
        }
        self.leave(&room, &empties);
    }

    /// Gives back a lent object of `key`: to the key's first waiter, else idle (and to those
    /// waiting for room in the total if they come first); closed if the pool is.
    pub(super) fn release(
        &self,
        key: &K,
        slot: &Slot<T, W, L>,
        entry: KEntry<T>,
        evicted: &mut Evicted<K, T>,
        woken: &mut Woken<W>,
    ) {
        {
            let mut k = slot.lock();
            if !self.contended.load(Ordering::SeqCst) && !self.is_closed() {
                // Nobody waits for room in the total: so the key's first waiter, if any,
                // waits at its key's cap, and still will once served.
                let KeyState {
                    line,
                    waiters,
                    idle,
                    ..
                } = &mut *k;
                match line.pop_front() {
                    Some(id) => match waiters.serve(id, Grant::Object(entry)) {
                        Ok(waker) => woken.push(waker),
                        // Not reached: every waiter in a line is in the slab.
                        Err(Grant::Object(e)) => idle.push_back(e),
                        Err(Grant::Create) => {}
                    },
                    None => idle.push_back(entry),
                }
                return;
            }
        }
        let mut room = self.enter();
        let mut empties = Vec::new();
        if self.is_closed() {
            self.forget_locked(&mut room, key, slot, &mut empties);
            evicted.push((key.clone(), entry, CloseReason::Shutdown));
        } else {
            let waiting = {
                let mut k = slot.lock();
                k.idle.push_back(entry);
                !k.line.is_empty()
            };
            let map = self.keys.read();
            let local = waiting.then_some(slot);
            self.dispatch(&mut room, &map, local, evicted, woken, &mut empties);
        }
        self.leave(&room, &empties);
    }

    /// One object of `key` (lent or reserved) left the pool: its place goes to the waiters.
    pub(super) fn forget(
        &self,
        key: &K,
        slot: &Slot<T, W, L>,
        evicted: &mut Evicted<K, T>,
        woken: &mut Woken<W>,
    ) {
        let mut room = self.enter();
        let mut empties = Vec::new();
        self.forget_locked(&mut room, key, slot, &mut empties);
        {
            let map = self.keys.read();
            self.dispatch(&mut room, &map, None, evicted, woken, &mut empties);
        }
        self.leave(&room, &empties);
    }

    /// One object of `key` left the pool. A count that would go below zero is a bookkeeping
    /// bug: caught in debug builds (the tests), saturated in release builds.
    fn forget_locked(
        &self,
        room: &mut Room<T, W, L>,
        key: &K,
        slot: &Slot<T, W, L>,
        empties: &mut Vec<K>,
    ) {
        debug_assert!(room.total > 0, "keyed pool total underflow");
        room.total = room.total.saturating_sub(1);
        let mut k = slot.lock();
        debug_assert!(k.size > 0, "keyed pool: an object left a key that has none");
        k.size = k.size.saturating_sub(1);
        if k.is_empty() {
            empties.push(key.clone());
        } else {
            drop(k);
            note_open(room, slot, self.max_per_key);
        }
    }

    /// Closes the state: every waiter leaves its line and is woken (to find the pool closed),
    /// idle objects go to `evicted`, and keys left empty are dropped.
    pub(super) fn close(&self, evicted: &mut Evicted<K, T>, woken: &mut Woken<W>) {
        let mut room = self.enter();
        self.closed.store(true, Ordering::SeqCst);
        room.open.clear();
        let mut empties = Vec::new();
        {
            let map = self.keys.read();
            for (key, slot) in map.iter() {
                let mut k = slot.lock();
                let KeyState {
                    line,
                    waiters,
                    idle,
                    size,
                } = &mut *k;
                for id in line.drain(..) {
                    woken.push(waiters.take_waker(id));
                }
                while let Some(e) = idle.pop_front() {
                    *size -= 1;
                    room.total -= 1;
                    evicted.push((key.clone(), e, CloseReason::Shutdown));
                }
                if k.is_empty() {
                    empties.push(key.clone());
                }
            }
        }
        self.leave(&room, &empties);
    }

    /// Closes the idle objects for which `retire` gives a reason and drops the keys left
    /// empty; the room goes to the waiters. Returns how many it closed.
    pub(super) fn evict_idle(
        &self,
        mut retire: impl FnMut(&K, &mut KEntry<T>) -> Option<CloseReason>,
        evicted: &mut Evicted<K, T>,
        woken: &mut Woken<W>,
    ) -> usize {
        let mut room = self.enter();
        let mut empties = Vec::new();
        let mut removed = 0;
        {
            let map = self.keys.read();
            for (key, slot) in map.iter() {
                let mut k = slot.lock();
                let mut i = 0;
                while i < k.idle.len() {
                    let reason = match k.idle.get_mut(i) {
                        Some(e) => retire(key, e),
                        None => None,
                    };
                    match reason.and_then(|r| k.idle.remove(i).map(|e| (e, r))) {
                        Some((e, reason)) => {
                            k.size -= 1;
                            removed += 1;
                            evicted.push((key.clone(), e, reason));
                        }
                        None => i += 1,
                    }
                }
                if k.is_empty() {
                    empties.push(key.clone());
                }
            }
            room.total -= removed;
            self.dispatch(&mut room, &map, None, evicted, woken, &mut empties);
        }
        self.leave(&room, &empties);
        removed
    }

    /// Sets when the sweep must wake waiter `id` of `slot`.
    pub(super) fn set_wake_at(&self, slot: &Slot<T, W, L>, id: usize, at: Ms) {
        slot.lock().waiters.set_wake_at(id, at);
    }

    /// The sweep at `now`: what wakes the waiters in line whose wake time has come (each
    /// then arms its own timer), and the earliest wake time of the others.
    pub(super) fn sweep(&self, now: Ms, woken: &mut Woken<W>) -> Ms {
        let mut next = NEVER;
        for slot in self.keys.read().values() {
            let mut k = slot.lock();
            let KeyState { line, waiters, .. } = &mut *k;
            for &id in line.iter() {
                match waiters.sweep(id, now) {
                    Ok(w) => woken.push(w),
                    Err(at) => next = next.min(at),
                }
            }
        }
        next
    }

    /// What wakes every waiter in line (the sweep stopped): each looks at the pool again.
    pub(super) fn wake_all(&self, woken: &mut Woken<W>) {
        for slot in self.keys.read().values() {
            let mut k = slot.lock();
            let KeyState { line, waiters, .. } = &mut *k;
            for &id in line.iter() {
                woken.push(waiters.take_waker(id));
            }
        }
    }

    /// The counts, each key's under its lock.
    pub(super) fn counts(&self) -> Counts {
        let room = self.room.lock();
        let map = self.keys.read();
        let mut c = Counts {
            keys: 0,
            total: room.total,
            idle: 0,
            waiting: 0,
        };
        for slot in map.values() {
            let k = slot.lock();
            c.keys += usize::from(k.size > 0);
            c.idle += k.idle.len();
            c.waiting += k.line.len();
        }
        c
    }

    /// Objects for `key`: idle, lent and being created.
    pub(super) fn size_of(&self, key: &K) -> usize {
        self.keys.read().get(key).map_or(0, |slot| slot.lock().size)
    }

    /// Runs `f` on every key's state (for the tests' checks).
    #[cfg(test)]
    fn each_key(&self, mut f: impl FnMut(&KeyState<T, W>)) -> usize {
        let room = self.room.lock();
        for slot in self.keys.read().values() {
            f(&slot.lock());
        }
        room.total
    }
}

/// Notes `slot`'s first waiter in the order of those waiting for room in the total, if it
/// waits only for that.
fn note_open<T, W, L: Locking>(room: &mut Room<T, W, L>, slot: &Slot<T, W, L>, max_per_key: usize) {
    let head = slot.lock().open_head(max_per_key);
    if let Some(seq) = head {
        insert_open(room, seq, slot);
    }
}

fn insert_open<T, W, L: Locking>(room: &mut Room<T, W, L>, seq: u64, slot: &Slot<T, W, L>) {
    let at = room.open.partition_point(|(n, _)| *n < seq);
    if room.open.get(at).is_none_or(|(n, _)| *n != seq) {
        room.open.insert(at, (seq, Arc::clone(slot)));
    }
}

/// The earliest waiter that waits only for room in the total: its arrival and key. Drops
/// stale entries on the way.
fn first_open<T, W, L: Locking>(
    room: &mut Room<T, W, L>,
    max_per_key: usize,
) -> Option<(u64, Slot<T, W, L>)> {
    loop {
        let (seq, slot) = room.open.front()?;
        let seq = *seq;
        let head = slot.lock().open_head(max_per_key);
        match head {
            Some(h) if h == seq => return room.open.front().cloned(),
            Some(h) => {
                // The key's first waiter went away; the next one takes its place in order.
                if let Some((_, slot)) = room.open.pop_front() {
                    insert_open(room, h, &slot);
                }
            }
            None => {
                room.open.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! A shuttle model of the keyed bookkeeping, on the pool's own code with shuttle's locks:
    //! threads on three keys (two on one key) take, wait in their key's line or for room in
    //! the total, create (one failing once), discard and return objects in every
    //! interleaving shuttle picks, one of them giving up its wait; in further models a
    //! thread closes the pool, or runs a maintenance pass. What wakes a waiter is a channel
    //! it blocks on, so a wake-up that is lost leaves it blocked for ever, which shuttle
    //! reports as a deadlock. The counts must balance at every step and at the end, every
    //! patient caller is served (or told the pool closed), nobody is left waiting, and a
    //! closed pool keeps nothing.

    use super::{Evicted, Got, Grant, KEntry, KeyState, Look, Slot, Table};
    use crate::clock::NEVER;
    use crate::keyed::locks::{Lock, Locking, ReadWrite};
    use crate::stats::CloseReason;
    use crate::waiters::Woken;
    use shuttle::sync::mpsc::{Receiver, Sender, channel};
    use std::sync::Arc;

    /// shuttle's locks.
    struct Shuttle;

    impl Locking for Shuttle {
        type Mutex<T> = shuttle::sync::Mutex<T>;
        type RwLock<T> = shuttle::sync::RwLock<T>;
    }

    impl<T> Lock<T> for shuttle::sync::Mutex<T> {
        type Guard<'a>
            = shuttle::sync::MutexGuard<'a, T>
        where
            Self: 'a;
        fn new(value: T) -> Self {
            shuttle::sync::Mutex::new(value)
        }
        fn lock(&self) -> Self::Guard<'_> {
            shuttle::sync::Mutex::lock(self).expect("not poisoned")
        }
    }

    impl<T> ReadWrite<T> for shuttle::sync::RwLock<T> {
        type Read<'a>
            = shuttle::sync::RwLockReadGuard<'a, T>
        where
            Self: 'a;
        type Write<'a>
            = shuttle::sync::RwLockWriteGuard<'a, T>
        where
            Self: 'a;
        fn new(value: T) -> Self {
            shuttle::sync::RwLock::new(value)
        }
        fn read(&self) -> Self::Read<'_> {
            shuttle::sync::RwLock::read(self).expect("not poisoned")
        }
        fn write(&self) -> Self::Write<'_> {
            shuttle::sync::RwLock::write(self).expect("not poisoned")
        }
    }

    type Pool = Table<u8, u32, Sender<()>, Shuttle>;
    type KeySlot = Slot<u32, Sender<()>, Shuttle>;

    fn wake(woken: Woken<Sender<()>>) {
        woken.wake_all(|tx| {
            let _ = tx.send(());
        });
    }

    /// The counts balance: the keys' sizes add up to the total, both caps hold, and no key
    /// is left with neither objects nor waiters.
    fn check(pool: &Pool) {
        let mut sizes = 0;
        let total = pool.each_key(|k: &KeyState<u32, Sender<()>>| {
            sizes += k.size;
            assert!(k.size <= pool.max_per_key);
            assert!(k.idle.len() <= k.size);
            assert!(!k.is_empty(), "an empty key stayed");
        });
        assert_eq!(sizes, total, "the keys' sizes add up to the total");
        assert!(total <= pool.max_total);
    }

    /// As `KeyedPool::get_timeout`: a grant, or `None` if this waiter gave up (at its first
    /// look, if `give_up`) or the pool closed.
    fn get(
        pool: &Pool,
        key: u8,
        give_up: bool,
        (tx, rx): &(Sender<()>, Receiver<()>),
    ) -> Option<(KeySlot, Grant<u32>)> {
        let mut evicted: Evicted<u8, u32> = Vec::new();
        let got = pool.get(&key, || tx.clone(), &mut evicted);
        check(pool);
        let (slot, id) = match got {
            Got::Closed => return None,
            Got::Served(slot, g) => return Some((slot, g)),
            Got::Wait(slot, id) => (slot, id),
        };
        // As a wait that counts on the sweep: its wake time, set after it joined its line.
        pool.set_wake_at(&slot, id, 5);
        loop {
            let look = if give_up {
                Look::Closed
            } else {
                pool.look(&slot, id, |_| false, || tx.clone())
            };
            match look {
                Look::Granted(g) => return Some((slot, g)),
                Look::Pending => {
                    let _ = rx.recv();
                }
                Look::Closed => {
                    // As the wait's drop guard: a grant that raced in is passed on.
                    let mut woken = Woken::default();
                    pool.give_up(&key, &slot, id, &mut evicted, &mut woken);
                    wake(woken);
                    check(pool);
                    return None;
                }
            }
        }
    }

    /// As `Inner::release` and `Inner::close_lent`.
    fn put(pool: &Pool, key: u8, slot: &KeySlot, obj: u32, discard: bool) {
        let mut evicted = Vec::new();
        let mut woken = Woken::default();
        if discard {
            pool.forget(&key, slot, &mut evicted, &mut woken);
        } else {
            let entry = KEntry {
                obj,
                last_used: 0,
                order: 0,
            };
            pool.release(&key, slot, entry, &mut evicted, &mut woken);
        }
        wake(woken);
        check(pool);
    }

    /// One user of `key`: `fail_create` makes its first creation fail, `discard` closes what
    /// it got, `give_up` leaves a wait at its first look. Says whether it was served.
    fn user(
        pool: &Pool,
        key: u8,
        (fail_create, discard, give_up): (bool, bool, bool),
        chan: &(Sender<()>, Receiver<()>),
    ) -> bool {
        let mut failed_once = false;
        loop {
            match get(pool, key, give_up, chan) {
                None => return false,
                Some((slot, Grant::Object(e))) => {
                    put(pool, key, &slot, e.obj, discard);
                    return true;
                }
                Some((slot, Grant::Create)) if fail_create && !failed_once => {
                    // A failed creation frees its place (as the reservation guard).
                    failed_once = true;
                    let mut woken = Woken::default();
                    pool.forget(&key, &slot, &mut Vec::new(), &mut woken);
                    wake(woken);
                    check(pool);
                }
                Some((slot, Grant::Create)) => {
                    put(pool, key, &slot, 7, discard);
                    return true;
                }
            }
        }
    }

    /// What else runs beside the users.
    #[derive(Clone, Copy, PartialEq)]
    enum Beside {
        Nothing,
        /// `KeyedPool::close`.
        Close,
        /// A maintenance pass that closes every idle object.
        Maintenance,
        /// Two sweeps of the waiters, as ticks of the maintenance task (every wake time has
        /// come): a waiter woken unserved looks again and waits on.
        Sweep,
    }

    fn model(beside: Beside, max_per_key: usize, max_total: usize) {
        let pool: Arc<Pool> = Arc::new(Table::new(max_per_key, max_total));
        let mut threads = Vec::new();
        for (key, behaviour) in [
            (0, (false, false, false)),
            (1, (true, false, false)),
            (2, (false, true, false)),
            (0, (false, false, true)),
            (0, (false, false, false)),
        ] {
            let pool = Arc::clone(&pool);
            threads.push(shuttle::thread::spawn(move || {
                let chan = channel();
                for _ in 0..2 {
                    let served = user(&pool, key, behaviour, &chan);
                    assert!(
                        served || behaviour.2 || beside == Beside::Close,
                        "a patient caller was not served"
                    );
                }
            }));
        }
        if beside != Beside::Nothing {
            let pool = Arc::clone(&pool);
            threads.push(shuttle::thread::spawn(move || {
                let mut evicted = Vec::new();
                let mut woken = Woken::default();
                if beside == Beside::Close {
                    pool.close(&mut evicted, &mut woken);
                } else if beside == Beside::Sweep {
                    for _ in 0..2 {
                        let mut swept = Woken::default();
                        let next = pool.sweep(NEVER, &mut swept);
                        assert_eq!(next, NEVER, "every wake time has come");
                        wake(swept);
                    }
                } else {
                    pool.evict_idle(|_, _| Some(CloseReason::Idle), &mut evicted, &mut woken);
                }
                wake(woken);
                check(&pool);
            }));
        }
        for t in threads {
            t.join().expect("a model thread panicked");
        }
        check(&pool);
        let counts = pool.counts();
        assert_eq!(counts.waiting, 0);
        assert_eq!(counts.idle, counts.total, "every object is back");
        if beside == Beside::Close {
            assert_eq!(counts.total, 0, "a closed pool keeps nothing");
            assert_eq!(
                ReadWrite::read(&pool.keys).len(),
                0,
                "a closed pool keeps no key"
            );
        }
    }

    fn explore(f: fn()) {
        shuttle::check_random(f, 1_500);
        shuttle::check_pct(f, 1_500, 3);
    }

    #[test]
    fn keyed_bookkeeping_balances_in_every_interleaving_explored() {
        explore(|| model(Beside::Nothing, 1, 2));
        explore(|| model(Beside::Nothing, 2, 3));
    }

    #[test]
    fn a_closed_keyed_pool_serves_nobody_and_keeps_nothing() {
        explore(|| model(Beside::Close, 1, 2));
    }

    #[test]
    fn a_maintenance_pass_beside_the_users_keeps_the_counts() {
        explore(|| model(Beside::Maintenance, 1, 2));
    }

    #[test]
    fn sweeps_beside_the_users_lose_no_waiter() {
        explore(|| model(Beside::Sweep, 1, 2));
    }
}
