//! A cache prefetch hint, for the renderer and the collector run.
//!
//! Rendering reads one gauge cell per gauge series, each its own allocation (counters are
//! summed from their dense arena instead, see the `counter` module); once the registry
//! outgrows the cache every read is a miss, and a miss per series in a row was more than half
//! the time of a 10,000-series render. Asking for the cell a few series ahead lets
//! the misses overlap. Reading ahead with an ordinary load did not help (the load stalls like
//! the miss it replaces); a prefetch instruction does not stall, and needs `unsafe` only
//! because `std::arch` marks it so.

/// Asks the processor to bring the `lines` cache lines (64 bytes each) from `ptr` into cache.
/// Does nothing on other architectures than x86-64.
#[inline(always)]
pub(crate) fn prefetch<T>(ptr: *const T, lines: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let base = ptr.cast::<i8>();
        for line in 0..lines {
            // SAFETY: a prefetch is only a hint: it changes no value the program can see and
            // never faults, whatever the address; `wrapping_add` makes no claim either.
            #[allow(unsafe_code)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(line * 64));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (ptr, lines);
}
