//! The pool's bookkeeping of objects and permits: [`Slots`], kept under one lock (the idle
//! queue and the counts of objects in the pool, lent out and being created), and
//! [`PermitDebt`], the permits a shrink still has to take back.
//!
//! [`Slots`] is plain data with no synchronisation of its own, and [`PermitDebt`] is generic
//! over its atomic counter, so the same code runs in the pool and under the model checker in
//! the tests.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::QueueMode;

/// An atomic counter: the standard one in the pool, the model checker's in the tests.
pub(crate) trait Counter {
    fn load(&self) -> usize;
    fn compare_exchange(&self, current: usize, new: usize) -> Result<usize, usize>;
    fn fetch_add(&self, n: usize);
}

impl Counter for AtomicUsize {
    #[inline]
    fn load(&self) -> usize {
        AtomicUsize::load(self, Ordering::Relaxed)
    }

    #[inline]
    fn compare_exchange(&self, current: usize, new: usize) -> Result<usize, usize> {
        self.compare_exchange_weak(current, new, Ordering::AcqRel, Ordering::Relaxed)
    }

    #[inline]
    fn fetch_add(&self, n: usize) {
        AtomicUsize::fetch_add(self, n, Ordering::AcqRel);
    }
}

/// Permits owed after a shrink: a shrink takes the free permits it can at once and owes
/// the rest, which returning permits then pay instead of going back to the semaphore.
/// Invariant: free permits + permits out - debt = the maximum size.
#[derive(Debug, Default)]
pub(crate) struct PermitDebt<C = AtomicUsize>(C);

impl<C: Counter> PermitDebt<C> {
    /// A permit comes back: it pays one unit of debt if there is any, else `give_back`
    /// returns it to the semaphore.
    #[inline]
    pub(crate) fn release(&self, give_back: impl FnOnce()) {
        let mut debt = self.0.load();
        while debt > 0 {
            match self.0.compare_exchange(debt, debt - 1) {
                Ok(_) => return,
                Err(d) => debt = d,
            }
        }
        give_back();
    }

    /// The maximum grew by `n`: pays the debt first, then `add`s the permits left over.
    pub(crate) fn grow(&self, n: usize, add: impl FnOnce(usize)) {
        let mut left = n;
        let mut debt = self.0.load();
        while debt > 0 && left > 0 {
            let pay = debt.min(left);
            match self.0.compare_exchange(debt, debt - pay) {
                Ok(_) => {
                    left -= pay;
                    break;
                }
                Err(d) => debt = d,
            }
        }
        add(left);
    }

    /// The maximum shrank by `n`: takes free permits with `try_take` while it can and owes
    /// the rest.
    pub(crate) fn shrink(&self, n: usize, mut try_take: impl FnMut() -> bool) {
        let mut owed = n;
        while owed > 0 && try_take() {
            owed -= 1;
        }
        if owed > 0 {
            self.0.fetch_add(owed);
        }
    }

    #[cfg(test)]
    fn owed(&self) -> usize {
        self.0.load()
    }
}

/// What [`Slots::take`] found.
#[derive(Debug)]
pub(crate) enum Take<T> {
    /// An idle object, now counted as lent.
    Idle(T),
    /// No idle object; a place for a new one was reserved (counted in `size` and `creating`).
    Reserved,
    /// No idle object and no room: the pool is at its maximum (only after a shrink).
    Full,
}

/// Idle objects and counts. Invariants: `idle.len() + lent + creating == size`, and `size`
/// only exceeds `max` after a shrink, until enough objects have been closed.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    idle: VecDeque<T>,
    size: usize,
    lent: usize,
    creating: usize,
    max: usize,
}

impl<T> Slots<T> {
    pub(crate) fn new(max: usize) -> Self {
        Slots {
            idle: VecDeque::with_capacity(max.min(1024)),
            size: 0,
            lent: 0,
            creating: 0,
            max,
        }
    }

    /// Takes an idle object (it becomes lent) or reserves a place for a new one.
    pub(crate) fn take(&mut self, mode: QueueMode) -> Take<T> {
        let popped = match mode {
            QueueMode::Fifo => self.idle.pop_front(),
            QueueMode::Lifo => self.idle.pop_back(),
        };
        let taken = match popped {
            Some(t) => {
                self.lent += 1;
                Take::Idle(t)
            }
            None if self.size < self.max => {
                self.size += 1;
                self.creating += 1;
                Take::Reserved
            }
            None => Take::Full,
        };
        self.check();
        taken
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

    /// A reserved creation succeeded and the new object goes to the idle queue. Returns it
    /// if the pool shrank meanwhile (the caller closes it and calls [`Slots::forget_lent`]
    /// after [`Slots::created_lent`]; here it is counted as lent).
    pub(crate) fn created_idle(&mut self, t: T) -> Result<(), T> {
        self.creating = dec(self.creating);
        self.lent += 1;
        self.put(t)
    }

    /// A reserved creation failed or was cancelled: the place is free again.
    pub(crate) fn cancel_reservation(&mut self) {
        self.creating = dec(self.creating);
        self.size = dec(self.size);
        self.check();
    }

    /// Returns a lent object to the idle queue, or hands it back if the pool is above its
    /// maximum (after a shrink): the caller then closes it and calls [`Slots::forget_lent`].
    pub(crate) fn put(&mut self, t: T) -> Result<(), T> {
        if self.size > self.max {
            return Err(t);
        }
        self.lent = dec(self.lent);
        self.idle.push_back(t);
        self.check();
        Ok(())
    }

    /// A lent object was closed.
    pub(crate) fn forget_lent(&mut self) {
        self.lent = dec(self.lent);
        self.size = dec(self.size);
        self.check();
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

    /// Changes the maximum and returns the idle objects above it, for the caller to close.
    pub(crate) fn set_max(&mut self, max: usize) -> Vec<T> {
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
        self.check();
        excess
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
    //! A shuttle model of the permit and slot bookkeeping: threads take permits from a
    //! counting semaphore, then take, create, check, discard and return objects through
    //! [`Slots`] in every interleaving shuttle picks, while one thread shrinks and grows the
    //! pool. The counts must balance at every step and at the end.

    use super::{PermitDebt, Slots, Take};
    use crate::config::QueueMode;
    use shuttle::sync::atomic::{AtomicUsize, Ordering};
    use shuttle::sync::{Condvar, Mutex};
    use std::sync::Arc;

    impl super::Counter for AtomicUsize {
        fn load(&self) -> usize {
            AtomicUsize::load(self, Ordering::Relaxed)
        }

        fn compare_exchange(&self, current: usize, new: usize) -> Result<usize, usize> {
            self.compare_exchange_weak(current, new, Ordering::AcqRel, Ordering::Relaxed)
        }

        fn fetch_add(&self, n: usize) {
            AtomicUsize::fetch_add(self, n, Ordering::AcqRel);
        }
    }

    /// The pool's permits: a counting semaphore (as Tokio's, under its own lock) beside the
    /// pool's own [`PermitDebt`] code on the model checker's atomic, so that shuttle explores
    /// the interleavings of the two as they happen in the pool.
    struct Permits {
        free: Mutex<usize>,
        freed: Condvar,
        debt: PermitDebt<AtomicUsize>,
    }

    impl Permits {
        fn acquire(&self) {
            let mut free = self.free.lock().unwrap();
            while *free == 0 {
                free = self.freed.wait(free).unwrap();
            }
            *free -= 1;
        }

        fn try_acquire(&self) -> bool {
            let mut free = self.free.lock().unwrap();
            let ok = *free > 0;
            if ok {
                *free -= 1;
            }
            ok
        }

        fn add(&self, n: usize) {
            *self.free.lock().unwrap() += n;
            self.freed.notify_all();
        }

        /// As `Inner::release_permit`.
        fn release(&self) {
            self.debt.release(|| self.add(1));
        }

        /// As `Inner::resize`.
        fn shrink(&self, n: usize) {
            self.debt.shrink(n, || self.try_acquire());
        }

        fn grow(&self, n: usize) {
            self.debt.grow(n, |left| self.add(left));
        }
    }

    /// One user: `fail_create` makes its first creation fail, `discard` closes what it got.
    fn user(slots: &Mutex<Slots<u32>>, permits: &Permits, fail_create: bool, discard: bool) {
        permits.acquire();
        let mut failed_once = false;
        let got = loop {
            let taken = slots.lock().unwrap().take(QueueMode::Fifo);
            match taken {
                Take::Idle(t) => break Some(t),
                Take::Reserved if fail_create && !failed_once => {
                    failed_once = true;
                    slots.lock().unwrap().cancel_reservation();
                }
                Take::Reserved => {
                    slots.lock().unwrap().created_lent();
                    break Some(7);
                }
                // Above the maximum after a shrink: give up this round.
                Take::Full => break None,
            }
        };
        if let Some(t) = got {
            let mut s = slots.lock().unwrap();
            // A discarded object, or one refused above the maximum, is closed.
            if discard || s.put(t).is_err() {
                s.forget_lent();
            }
        }
        permits.release();
    }

    fn model() {
        let slots = Arc::new(Mutex::new(Slots::<u32>::new(2)));
        let permits = Arc::new(Permits {
            free: Mutex::new(2),
            freed: Condvar::new(),
            debt: PermitDebt::default(),
        });
        let mut threads = Vec::new();
        for (fail_create, discard) in [(false, false), (true, false), (false, true)] {
            let slots = Arc::clone(&slots);
            let permits = Arc::clone(&permits);
            threads.push(shuttle::thread::spawn(move || {
                for _ in 0..2 {
                    user(&slots, &permits, fail_create, discard);
                }
            }));
        }
        {
            let slots = Arc::clone(&slots);
            let permits = Arc::clone(&permits);
            threads.push(shuttle::thread::spawn(move || {
                let excess = slots.lock().unwrap().set_max(1);
                drop(excess);
                permits.shrink(1);
                let excess = slots.lock().unwrap().set_max(2);
                assert!(excess.is_empty());
                permits.grow(1);
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        let s = slots.lock().unwrap();
        assert_eq!(s.lent(), 0);
        assert_eq!(s.creating(), 0);
        assert_eq!(s.size(), s.idle());
        assert!(s.size() <= s.max());
        let free = *permits.free.lock().unwrap();
        assert_eq!(
            (free, permits.debt.owed()),
            (2, 0),
            "every permit came back"
        );
    }

    #[test]
    fn bookkeeping_balances_in_every_interleaving_explored() {
        shuttle::check_random(model, 2_000);
        shuttle::check_pct(model, 2_000, 3);
    }
}
