//! The pool's bookkeeping of objects, kept under one lock: the idle queue and the counts of
//! objects in the pool, lent out and being created.
//!
//! This is plain data with no synchronisation of its own, so the same code runs under the
//! pool's mutex and under the model checker in the tests.

use std::collections::VecDeque;

use crate::config::QueueMode;

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
    pub(crate) fn remove_idle(&mut self, mut remove: impl FnMut(&T, usize) -> bool) -> Vec<T> {
        let mut removed = Vec::new();
        let mut kept = VecDeque::with_capacity(self.idle.capacity());
        while let Some(t) = self.idle.pop_front() {
            if remove(&t, self.size) {
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
