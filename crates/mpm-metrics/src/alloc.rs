//! An opt-in counting global allocator, for allocation deltas and allocation-free tests.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static ALLOCATED: Cell<u64> = const { Cell::new(0) };
    static FREED: Cell<u64> = const { Cell::new(0) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static DEALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

static ACTIVE: AtomicBool = AtomicBool::new(false);

/// What the current thread has allocated and freed since it started, as counted by
/// [`CountingAllocator`]. All zero when that allocator is not the global allocator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// Bytes allocated (reallocations count their new size).
    pub allocated_bytes: u64,
    /// Bytes freed (reallocations count their old size).
    pub freed_bytes: u64,
    /// Allocation calls (including reallocations).
    pub allocations: u64,
    /// Deallocation calls (including reallocations).
    pub deallocations: u64,
}

impl AllocStats {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &AllocStats) -> AllocStats {
        AllocStats {
            allocated_bytes: self.allocated_bytes.wrapping_sub(earlier.allocated_bytes),
            freed_bytes: self.freed_bytes.wrapping_sub(earlier.freed_bytes),
            allocations: self.allocations.wrapping_sub(earlier.allocations),
            deallocations: self.deallocations.wrapping_sub(earlier.deallocations),
        }
    }
}

/// The current thread's allocation counts.
pub fn thread_stats() -> AllocStats {
    // `try_with` because a thread-local may already be gone while a thread exits.
    let get = |c: &'static std::thread::LocalKey<Cell<u64>>| c.try_with(Cell::get).unwrap_or(0);
    AllocStats {
        allocated_bytes: get(&ALLOCATED),
        freed_bytes: get(&FREED),
        allocations: get(&ALLOCATIONS),
        deallocations: get(&DEALLOCATIONS),
    }
}

#[inline]
fn bump(c: &'static std::thread::LocalKey<Cell<u64>>, n: u64) {
    let _ = c.try_with(|c| c.set(c.get().wrapping_add(n)));
}

/// A global allocator that forwards to another (the system allocator by default) and counts,
/// per thread, the bytes and calls it sees. Opt in from a binary or a test:
///
/// ```
/// use mpm_metrics::CountingAllocator;
///
/// #[global_allocator]
/// static ALLOC: CountingAllocator = CountingAllocator::system();
///
/// fn main() {
///     let before = mpm_metrics::thread_stats();
///     let v = vec![0u8; 1024];
///     let after = mpm_metrics::thread_stats();
///     assert!(CountingAllocator::is_active());
///     assert!(after.since(&before).allocated_bytes >= 1024);
///     drop(v);
/// }
/// ```
///
/// Counting is per thread (plain thread-local cells, no shared atomic), so it adds a few
/// nanoseconds to each allocation and no contention.
#[derive(Debug, Default)]
pub struct CountingAllocator<A = System> {
    inner: A,
}

impl CountingAllocator<System> {
    /// Counts around the system allocator.
    pub const fn system() -> Self {
        Self { inner: System }
    }

    /// Whether a `CountingAllocator` has served an allocation in this process, that is,
    /// whether it is the global allocator.
    pub fn is_active() -> bool {
        ACTIVE.load(Ordering::Relaxed)
    }
}

impl<A> CountingAllocator<A> {
    /// Counts around `inner`.
    pub const fn new(inner: A) -> Self {
        Self { inner }
    }
}

// SAFETY: every method forwards to `inner`, a `GlobalAlloc`, with the caller's arguments
// unchanged, so `inner` upholds the contract; the bookkeeping only touches const-initialised
// thread-local `Cell<u64>`s (no allocation, no destructor, no re-entry into the allocator).
// The tests (`tests/it/alloc.rs`) run it as the global allocator under many threads.
#[allow(unsafe_code)]
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout, as the trait requires.
        let p = unsafe { self.inner.alloc(layout) };
        if !p.is_null() {
            self.count_alloc(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { self.inner.alloc_zeroed(layout) };
        if !p.is_null() {
            self.count_alloc(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a pointer from this allocator with its layout.
        unsafe { self.inner.dealloc(ptr, layout) };
        bump(&FREED, layout.size() as u64);
        bump(&DEALLOCATIONS, 1);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's arguments meet `realloc`'s contract, forwarded unchanged.
        let p = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            bump(&FREED, layout.size() as u64);
            bump(&DEALLOCATIONS, 1);
            self.count_alloc(new_size);
        }
        p
    }
}

impl<A> CountingAllocator<A> {
    #[inline]
    fn count_alloc(&self, size: usize) {
        if !ACTIVE.load(Ordering::Relaxed) {
            ACTIVE.store(true, Ordering::Relaxed);
        }
        bump(&ALLOCATED, size as u64);
        bump(&ALLOCATIONS, 1);
    }
}
