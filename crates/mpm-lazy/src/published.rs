//! Generations whose current value is published as one pointer, so the warm read is one acquire
//! load and one branch, like `OnceLock::get`.
//!
//! Every generation's value lives in its own heap allocation ([`AliasableBox`]: a box that claims
//! no uniqueness, so moving the owner does not invalidate pointers into it). `published` is either
//! null or points at the value of the current generation's cell. The protocol:
//!
//! - a pointer is stored only under the reset lock, and only while the generation whose cell holds
//!   the value is still current ([`Published::publish`]);
//! - a reset clears the pointer under the same lock, before it makes the new generation current
//!   ([`Published::advance`]), so a reader that sees the new generation never sees an older value
//!   through the pointer afterwards;
//! - `&mut self` methods that drop or move a value out clear or recompute the pointer.
//!
//! Publication is an optimisation only: a null pointer sends the reader to the cells, which are
//! the source of truth; a value found there is published for the next reader.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use aliasable::boxed::AliasableBox;

use crate::generation::Generations;

/// A once-cell whose value, once set, is a heap allocation that stays put.
pub(crate) trait Slot {
    /// The type of the value.
    type Value;

    /// The boxed value, if set. A set value is never replaced or dropped through `&self`.
    fn boxed(&self) -> Option<&AliasableBox<Self::Value>>;

    /// Takes the boxed value out.
    fn take_boxed(&mut self) -> Option<AliasableBox<Self::Value>>;
}

impl<T> Slot for once_cell::sync::OnceCell<AliasableBox<T>> {
    type Value = T;

    #[inline]
    fn boxed(&self) -> Option<&AliasableBox<T>> {
        self.get()
    }

    fn take_boxed(&mut self) -> Option<AliasableBox<T>> {
        self.take()
    }
}

impl<T> Slot for tokio::sync::OnceCell<AliasableBox<T>> {
    type Value = T;

    #[inline]
    fn boxed(&self) -> Option<&AliasableBox<T>> {
        self.get()
    }

    fn take_boxed(&mut self) -> Option<AliasableBox<T>> {
        self.take()
    }
}

/// The generations of a lazy value plus a pointer to the current value.
pub(crate) struct Published<C: Slot> {
    /// Null, or the value of the current generation's cell (see the module docs).
    published: AtomicPtr<C::Value>,
    cells: Generations<C>,
}

impl<C: Slot> Published<C> {
    pub(crate) const fn new(first: C) -> Self {
        Self {
            published: AtomicPtr::new(ptr::null_mut()),
            cells: Generations::new(first),
        }
    }

    /// The current value, if built: one acquire load and one branch when it is published.
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(crate) fn get(&self) -> Option<&C::Value> {
        let value = self.published.load(Ordering::Acquire);
        if value.is_null() {
            return self.get_unpublished();
        }
        // SAFETY: a non-null `published` was stored by `publish` or, through `&mut self`, by
        // `compact` (the only stores of a non-null pointer), and points at the value inside an
        // `AliasableBox` held by a cell of `self.cells`: `publish` under the reset lock while that
        // cell's generation is current, `compact` from the current cell. That value outlives
        // this `&self` borrow:
        // - through `&self` a set cell is never cleared or overwritten (`Slot::boxed` is a
        //   once-cell's value) and `Generations` only appends cells, so the box is dropped only
        //   through `&mut self` (`take`, `compact`) or when `self` is dropped; `take` and `compact`
        //   clear or recompute `published` before any value is dropped;
        // - the value sits in its own heap allocation owned through a raw pointer, so its address
        //   does not change when the cell (generation 0 is inline) or `self` is moved, and a move
        //   does not retag it as a unique `Box` would;
        // - the value was fully written before it was published: the publisher saw it through
        //   the once-cell's acquire read, and the release store of `published` pairs with the
        //   acquire load above;
        // - no `&mut` to the value exists while `&self` does, and sharing `&self` across threads
        //   needs `C: Sync`, which for both cell types needs `C::Value: Sync`.
        Some(unsafe { &*value })
    }

    #[cold]
    #[inline(never)]
    fn get_unpublished(&self) -> Option<&C::Value> {
        let (generation, cell) = self.cells.current_indexed();
        let value = cell.boxed()?;
        self.publish(generation);
        Some(value)
    }

    /// The index and cell of the current generation, for the initialization path.
    #[inline]
    pub(crate) fn current(&self) -> (usize, &C) {
        self.cells.current_indexed()
    }

    /// Publishes the value of `generation`'s cell, if that generation is still current and its
    /// value is built. Call it after an initialization of that cell.
    pub(crate) fn publish(&self, generation: usize) {
        if !self.published.load(Ordering::Relaxed).is_null() {
            // Someone published: this generation's value, or an older one that the reset in
            // progress is about to clear (the next reader that finds no pointer publishes).
            return;
        }
        self.cells.if_current(generation, |cell| {
            if let Some(boxed) = cell.boxed() {
                let value: *const C::Value = &**boxed;
                self.published.store(value.cast_mut(), Ordering::Release);
            }
        });
    }

    /// Opens a new generation with the empty cell `cell` and makes it current.
    pub(crate) fn advance(&self, cell: C) {
        self.cells.advance_with(cell, || {
            self.published.store(ptr::null_mut(), Ordering::Release);
        });
    }

    /// The number of the current generation (0 before the first reset).
    pub(crate) fn generation(&self) -> u64 {
        self.cells.generation()
    }

    /// How many cells of earlier generations are retained.
    pub(crate) fn retained(&self) -> usize {
        self.cells.retained()
    }

    /// Drops every earlier generation, keeping the current value (republished at once).
    pub(crate) fn compact(&mut self, empty: C) {
        *self.published.get_mut() = ptr::null_mut();
        self.cells.compact(empty);
        let current = self
            .cells
            .current_mut()
            .boxed()
            .map_or(ptr::null(), |boxed| &**boxed as *const C::Value);
        *self.published.get_mut() = current.cast_mut();
    }

    /// Takes the current value out.
    pub(crate) fn take(&mut self) -> Option<C::Value> {
        *self.published.get_mut() = ptr::null_mut();
        let boxed = self.cells.current_mut().take_boxed()?;
        Some(*AliasableBox::into_unique(boxed))
    }
}
