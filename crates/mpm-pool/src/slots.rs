//! The pool's bookkeeping of objects and waiters: [`Slots`], kept under one lock (the idle
//! queue, the counts of objects in the pool, lent out and being created, and the queue of
//! callers waiting for an object or for room to create one).
//!
//! A returned object goes straight to the first waiter (direct hand-off): it never passes
//! through the idle queue while someone waits, and no permit changes hands, so a contended
//! get costs one lock to join the queue, one in the release that serves it and one to pick
//! the object up. [`Slots`] is plain data with no synchronisation of its own, generic over
//! what wakes a waiter, so the same code runs in the pool and under the model checker in the
//! tests. The waiters themselves are the [`Waiters`] both pools share.

use std::collections::VecDeque;

use crate::clock::{Ms, NEVER};
use crate::config::QueueMode;
use crate::waiters::Waiters;

/// What [`Slots::take`] found.
#[derive(Debug)]
pub(crate) enum Take<T> {
    /// An idle object, now counted as lent.
    Idle(T),
    /// No idle object; a place for a new one was reserved (counted in `size` and `creating`).
    Reserved,
    /// Nothing free (or others wait already): the caller joined the queue under this key.
    Wait(usize),
}

impl<T> Take<T> {
    /// What the caller is given, or the key it waits under.
    #[inline]
    pub(crate) fn into_grant(self) -> Result<Grant<T>, usize> {
        match self {
            Take::Idle(entry) => Ok(Grant::Object(entry)),
            Take::Reserved => Ok(Grant::Room),
            Take::Wait(key) => Err(key),
        }
    }
}

/// What a waiter is given.
#[derive(Debug)]
pub(crate) enum Grant<T> {
    /// An object, counted as lent.
    Object(T),
    /// A reserved place for a new object (counted in `size` and `creating`).
    Room,
}

/// Idle objects, counts and waiters. Invariants: `idle.len() + lent + creating == size`
/// (a granted object counts as lent, granted room as creating); `size` only exceeds `max`
/// after a shrink, until enough objects have been closed; and while anyone is queued no
/// object is idle and there is no room.
#[derive(Debug)]
pub(crate) struct Slots<T, W> {
    idle: VecDeque<T>,
    size: usize,
    lent: usize,
    creating: usize,
    max: usize,
    /// Keys of the waiters not yet served, first come first.
    queue: VecDeque<usize>,
    /// The waiters by key.
    waiters: Waiters<Grant<T>, W>,
}

impl<T, W> Slots<T, W> {
    pub(crate) fn new(max: usize) -> Self {
        Slots {
            idle: VecDeque::with_capacity(max.min(1024)),
            size: 0,
            lent: 0,
            creating: 0,
            max,
            queue: VecDeque::new(),
            waiters: Waiters::default(),
        }
    }

    /// Takes an idle object (it becomes lent), reserves a place for a new one, or queues the
    /// caller behind those already waiting.
    #[inline]
    pub(crate) fn take(&mut self, mode: QueueMode) -> Take<T> {
        let taken = if !self.queue.is_empty() {
            Take::Wait(self.enqueue())
        } else {
            let popped = match mode {
                QueueMode::Fifo => self.idle.pop_front(),
                QueueMode::Lifo => self.idle.pop_back(),
            };
            match popped {
                Some(t) => {
                    self.lent += 1;
                    Take::Idle(t)
                }
                None if self.size < self.max => {
                    self.size += 1;
                    self.creating += 1;
                    Take::Reserved
                }
                None => Take::Wait(self.enqueue()),
            }
        };
        self.check();
        taken
    }

    #[inline]
    fn enqueue(&mut self) -> usize {
        let key = self.waiters.insert(0);
        self.queue.push_back(key);
        key
    }

    /// The waiter's grant, if it has one: then it leaves the slab.
    pub(crate) fn granted(&mut self, key: usize) -> Option<Grant<T>> {
        self.waiters.granted(key)
    }

    /// Sets what wakes the waiter `key` (`same` says whether the one it has is that already).
    pub(crate) fn set_waker(
        &mut self,
        key: usize,
        same: impl Fn(&W) -> bool,
        make: impl FnOnce() -> W,
    ) {
        self.waiters.set_waker(key, same, make);
    }

    /// Sets when the sweep must wake the waiter `key`.
    pub(crate) fn set_wake_at(&mut self, key: usize, at: Ms) {
        self.waiters.set_wake_at(key, at);
    }

    /// The waiter `key` gives up: it leaves the queue, and a grant it had not picked up yet
    /// comes back for the caller to pass on.
    pub(crate) fn cancel(&mut self, key: usize) -> Option<Grant<T>> {
        let grant = self.waiters.remove(key)?;
        if grant.is_none()
            && let Some(at) = self.queue.iter().position(|&k| k == key)
        {
            self.queue.remove(at);
        }
        grant
    }

    /// Gives the first waiter `grant`; returns what wakes it.
    fn serve(&mut self, key: usize, grant: Grant<T>) -> Option<W> {
        // Every queued key is in the slab (a waiter that leaves also leaves the queue).
        self.waiters.serve(key, grant).ok().flatten()
    }

    /// Returns a lent object: to the first waiter if any (it stays lent), else to the idle
    /// queue; `Ok` holds what wakes the waiter served. Hands it back if the pool is above its
    /// maximum (after a shrink): the caller then closes it and calls [`Slots::forget_lent`].
    #[inline]
    pub(crate) fn put(&mut self, t: T) -> Result<Option<W>, T> {
        if self.size > self.max {
            return Err(t);
        }
        let woken = match self.queue.pop_front() {
            Some(key) => self.serve(key, Grant::Object(t)),
            None => {
                self.lent = dec(self.lent);
                self.idle.push_back(t);
                None
            }
        };
        self.check();
        Ok(woken)
    }

    /// If there is room and someone waits, reserves a place for the first waiter; returns
    /// what wakes it.
    fn grant_room(&mut self) -> Option<W> {
        if self.size >= self.max {
            return None;
        }
        let key = self.queue.pop_front()?;
        self.size += 1;
        self.creating += 1;
        self.check();
        self.serve(key, Grant::Room)
    }

    /// Reserves a place for a new idle object if the pool holds fewer than `min_idle` idle
    /// objects and is below its maximum (the maintenance task's refill).
    pub(crate) fn reserve_for_idle(&mut self, min_idle: usize) -> bool {
        let ok = self.idle.len() + self.creating < min_idle && self.size < self.max;
        if ok {
            self.size += 1;
            self.creating += 1;
        }
        self.check();
        ok
    }

    /// A reserved creation succeeded and the new object is lent out.
    pub(crate) fn created_lent(&mut self) {
        self.creating = dec(self.creating);
        self.lent += 1;
        self.check();
    }

    /// A reserved creation succeeded and the new object goes to the first waiter or the idle
    /// queue, as [`Slots::put`] (on `Err` it is counted as lent).
    pub(crate) fn created_idle(&mut self, t: T) -> Result<Option<W>, T> {
        self.creating = dec(self.creating);
        self.lent += 1;
        self.put(t)
    }

    /// A reserved creation failed or was cancelled: the place goes to the first waiter, or
    /// is free again. Returns what wakes the waiter served.
    #[must_use]
    pub(crate) fn cancel_reservation(&mut self) -> Option<W> {
        self.creating = dec(self.creating);
        self.size = dec(self.size);
        self.check();
        self.grant_room()
    }

    /// A lent object was closed: its place goes to the first waiter, or is free again.
    /// Returns what wakes the waiter served.
    #[must_use]
    pub(crate) fn forget_lent(&mut self) -> Option<W> {
        self.lent = dec(self.lent);
        self.size = dec(self.size);
        self.check();
        self.grant_room()
    }

    /// Removes the idle objects for which `remove` says yes (oldest first, and `remove` is
    /// told how many objects would remain), for the caller to close.
    pub(crate) fn remove_idle(&mut self, mut remove: impl FnMut(&mut T, usize) -> bool) -> Vec<T> {
        let mut removed = Vec::new();
        let mut kept = VecDeque::with_capacity(self.idle.capacity());
        while let Some(mut t) = self.idle.pop_front() {
            if remove(&mut t, self.size) {
                self.size = dec(self.size);
                removed.push(t);
            } else {
                kept.push_back(t);
            }
        }
        self.idle = kept;
        self.check();
        removed
    }

    /// Takes every idle object out, for the caller to close (pool shutdown).
    pub(crate) fn drain_idle(&mut self) -> Vec<T> {
        let drained: Vec<T> = self.idle.drain(..).collect();
        self.size -= drained.len();
        self.check();
        drained
    }

    /// Takes the first idle object that `pick` selects; it becomes lent.
    pub(crate) fn take_where(&mut self, pick: impl FnMut(&T) -> bool) -> Option<T> {
        let at = self.idle.iter().position(pick)?;
        let t = self.idle.remove(at)?;
        self.lent += 1;
        self.check();
        Some(t)
    }

    /// Changes the maximum; returns the idle objects above it, for the caller to close, and
    /// what wakes the waiters given the room a growth made.
    pub(crate) fn set_max(&mut self, max: usize) -> (Vec<T>, Vec<W>) {
        self.max = max;
        let mut excess = Vec::new();
        while self.size > self.max {
            match self.idle.pop_back() {
                Some(t) => {
                    self.size -= 1;
                    excess.push(t);
                }
                None => break,
            }
        }
        let mut woken = Vec::new();
        while self.size < self.max && !self.queue.is_empty() {
            woken.extend(self.grant_room());
        }
        self.check();
        (excess, woken)
    }

    /// What wakes every waiter not yet served (the pool closed, or the sweep stopped): each
    /// looks at the pool again.
    pub(crate) fn wake_all(&mut self) -> Vec<W> {
        let mut woken = Vec::new();
        for &key in &self.queue {
            woken.extend(self.waiters.take_waker(key));
        }
        woken
    }

    /// The sweep at `now`: what wakes the waiters whose wake time has come (each then arms
    /// its own timer), and the earliest wake time of the others.
    pub(crate) fn sweep(&mut self, now: Ms) -> (Vec<W>, Ms) {
        let mut woken = Vec::new();
        let mut next = NEVER;
        for &key in &self.queue {
            match self.waiters.sweep(key, now) {
                Ok(w) => woken.extend(w),
                Err(at) => next = next.min(at),
            }
        }
        (woken, next)
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn idle(&self) -> usize {
        self.idle.len()
    }

    pub(crate) fn lent(&self) -> usize {
        self.lent
    }

    pub(crate) fn creating(&self) -> usize {
        self.creating
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Callers waiting and not yet served.
    pub(crate) fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// How many gets could start now without waiting: on an idle object or on room.
    pub(crate) fn available(&self) -> usize {
        if !self.queue.is_empty() {
            return 0;
        }
        self.idle.len() + self.max.saturating_sub(self.size)
    }

    fn check(&self) {
        debug_assert_eq!(
            self.idle.len() + self.lent + self.creating,
            self.size,
            "pool bookkeeping out of balance"
        );
    }
}

/// Decrements a count; an underflow is a bookkeeping bug, caught in debug builds and
/// saturated in release builds.
fn dec(n: usize) -> usize {
    debug_assert!(n > 0, "pool count underflow");
    n.saturating_sub(1)
}

#[cfg(test)]
mod tests {
    //! A shuttle model of the slot bookkeeping: threads take, wait for a hand-off, create,
    //! discard and return objects through [`Slots`] in every interleaving shuttle picks, one
    //! of them giving up its wait, while one thread shrinks and grows the pool. The counts
    //! must balance at every step and at the end, and nobody is left waiting.

    use super::{Grant, Slots, Take};
    use crate::config::QueueMode;
    use shuttle::sync::{Condvar, Mutex};
    use std::sync::Arc;

    /// The pool's lock and a condition variable standing in for the wakers (`W = ()`: every
    /// change wakes everyone, who look again).
    struct Pool {
        slots: Mutex<Slots<u32, ()>>,
        changed: Condvar,
    }

    impl Pool {
        /// As `Inner::acquire`: a grant, or `None` if this waiter gave up (`give_up`).
        fn get(&self, give_up: bool) -> Option<Grant<u32>> {
            let mut s = self.slots.lock().unwrap();
            let key = match s.take(QueueMode::Fifo) {
                Take::Idle(t) => return Some(Grant::Object(t)),
                Take::Reserved => return Some(Grant::Room),
                Take::Wait(key) => key,
            };
            loop {
                if let Some(g) = s.granted(key) {
                    return Some(g);
                }
                if give_up {
                    // As the wait's drop guard: a grant that raced in is passed on.
                    match s.cancel(key) {
                        Some(Grant::Object(t)) if s.put(t).is_err() => {
                            let _ = s.forget_lent();
                        }
                        Some(Grant::Object(_)) | None => {}
                        Some(Grant::Room) => {
                            let _ = s.cancel_reservation();
                        }
                    }
                    drop(s);
                    self.changed.notify_all();
                    return None;
                }
                s = self.changed.wait(s).unwrap();
            }
        }
    }

    /// One user: `fail_create` makes its first creation fail, `discard` closes what it got.
    fn user(pool: &Pool, fail_create: bool, discard: bool, give_up: bool) {
        let mut failed_once = false;
        let got = loop {
            match pool.get(give_up) {
                None => break None,
                Some(Grant::Object(t)) => break Some(t),
                Some(Grant::Room) if fail_create && !failed_once => {
                    failed_once = true;
                    let _ = pool.slots.lock().unwrap().cancel_reservation();
                    pool.changed.notify_all();
                }
                Some(Grant::Room) => {
                    pool.slots.lock().unwrap().created_lent();
                    break Some(7);
                }
            }
        };
        if let Some(t) = got {
            let mut s = pool.slots.lock().unwrap();
            // A discarded object, or one refused above the maximum, is closed.
            if discard || s.put(t).is_err() {
                let _ = s.forget_lent();
            }
            drop(s);
            pool.changed.notify_all();
        }
    }

    fn model() {
        let pool = Arc::new(Pool {
            slots: Mutex::new(Slots::new(2)),
            changed: Condvar::new(),
        });
        let mut threads = Vec::new();
        for (fail_create, discard, give_up) in [
            (false, false, false),
            (true, false, false),
            (false, true, false),
            (false, false, true),
        ] {
            let pool = Arc::clone(&pool);
            threads.push(shuttle::thread::spawn(move || {
                for _ in 0..2 {
                    user(&pool, fail_create, discard, give_up);
                }
            }));
        }
        {
            let pool = Arc::clone(&pool);
            threads.push(shuttle::thread::spawn(move || {
                let (excess, _) = pool.slots.lock().unwrap().set_max(1);
                drop(excess);
                pool.changed.notify_all();
                let (excess, _) = pool.slots.lock().unwrap().set_max(2);
                assert!(excess.is_empty());
                pool.changed.notify_all();
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        let s = pool.slots.lock().unwrap();
        assert_eq!(s.lent(), 0);
        assert_eq!(s.creating(), 0);
        assert_eq!(s.waiting(), 0);
        assert_eq!(s.size(), s.idle());
        assert!(s.size() <= s.max());
        assert_eq!(s.available(), 2, "every place is free again");
    }

    #[test]
    fn bookkeeping_balances_in_every_interleaving_explored() {
        shuttle::check_random(model, 2_000);
        shuttle::check_pct(model, 2_000, 3);
    }
}
