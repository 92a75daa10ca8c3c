//! Generations of a once-cell, so that `reset` works through `&self`.
//!
//! A reset cannot free a value that readers may still borrow as `&T`. So a reset opens a new,
//! empty cell (a new generation) and keeps the old cells until the owner is dropped or a `&mut`
//! method clears them. Generation 0 lives inline, so a cell may move with its owner; `Lazy` and
//! `AsyncLazy` keep their values on the heap and publish a pointer to the current one (see
//! `published.rs`), `LazyField` reads through `current()`.

use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The cells of every generation; the newest one is current.
pub(crate) struct Generations<C> {
    /// Index of the current generation; 0 is `first`, `n` is `later[n - 1]`.
    current: AtomicUsize,
    first: C,
    later: OnceLock<Box<boxcar::Vec<C>>>,
    /// Serialises resets so that pushes and `current` agree.
    reset_lock: Mutex<()>,
}

impl<C> Generations<C> {
    pub(crate) const fn new(first: C) -> Self {
        Self {
            current: AtomicUsize::new(0),
            first,
            later: OnceLock::new(),
            reset_lock: Mutex::new(()),
        }
    }

    /// The cell of the current generation.
    #[inline(always)]
    pub(crate) fn current(&self) -> &C {
        let generation = self.current.load(Ordering::Acquire);
        if generation == 0 {
            &self.first
        } else {
            self.later_cell(generation)
        }
    }

    #[cold]
    #[inline(never)]
    fn later_cell(&self, generation: usize) -> &C {
        // `current` is stored (Release) only after the push completed, and `later` is set before
        // the first push, so both lookups succeed.
        let later = self.later.get().expect("a later generation exists");
        later
            .get(generation - 1)
            .expect("the current generation was pushed")
    }

    /// The index of the current generation and its cell.
    #[inline]
    pub(crate) fn current_indexed(&self) -> (usize, &C) {
        let generation = self.current.load(Ordering::Acquire);
        let cell = if generation == 0 {
            &self.first
        } else {
            self.later_cell(generation)
        };
        (generation, cell)
    }

    /// Runs `f` on the cell of `generation` under the reset lock, if that generation is still
    /// current; no reset can start or finish while `f` runs.
    pub(crate) fn if_current(&self, generation: usize, f: impl FnOnce(&C)) {
        let _serial = self
            .reset_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Only this lock's holders store `current`, so a relaxed load sees the latest store.
        if self.current.load(Ordering::Relaxed) == generation {
            let cell = if generation == 0 {
                &self.first
            } else {
                self.later_cell(generation)
            };
            f(cell);
        }
    }

    /// The number of the current generation (0 before the first reset).
    pub(crate) fn generation(&self) -> u64 {
        self.current.load(Ordering::Acquire) as u64
    }

    /// Opens a new generation with `cell` and makes it current.
    pub(crate) fn advance(&self, cell: C) {
        self.advance_with(cell, || {});
    }

    /// Opens a new generation with `cell`, runs `before_switch` under the reset lock, then makes
    /// the new generation current (a release store, so whoever sees the new generation also sees
    /// what `before_switch` did).
    pub(crate) fn advance_with(&self, cell: C, before_switch: impl FnOnce()) {
        let _serial = self
            .reset_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let later = self.later.get_or_init(|| Box::new(boxcar::Vec::new()));
        let index = later.push(cell);
        before_switch();
        self.current.store(index + 1, Ordering::Release);
    }

    /// How many cells of earlier generations are retained.
    pub(crate) fn retained(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// Drops every earlier generation and makes `current` generation 0 again, keeping its cell.
    pub(crate) fn compact(&mut self, empty: C) {
        let generation = *self.current.get_mut();
        if generation == 0 {
            return;
        }
        let mut later = self.later.take().expect("a later generation exists");
        let newest = later
            .get_mut(generation - 1)
            .map(|cell| std::mem::replace(cell, empty))
            .expect("the current generation was pushed");
        self.first = newest;
        *self.current.get_mut() = 0;
    }

    /// The current cell, mutably.
    pub(crate) fn current_mut(&mut self) -> &mut C {
        let generation = *self.current.get_mut();
        if generation == 0 {
            &mut self.first
        } else {
            self.later
                .get_mut()
                .expect("a later generation exists")
                .get_mut(generation - 1)
                .expect("the current generation was pushed")
        }
    }
}
