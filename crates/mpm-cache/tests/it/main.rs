//! Integration tests of mpm-cache.

use mpm_metrics::CountingAllocator;

// Counts allocations per thread, for the L1 memory-overhead test.
#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

mod admission;
mod bus;
mod bypass;
#[cfg(feature = "disk")]
mod damage;
#[cfg(feature = "disk")]
mod disk;
mod flight;
#[cfg(feature = "disk")]
mod kill;
mod load;
mod memory;
#[cfg(feature = "disk")]
mod metrics;
#[cfg(feature = "disk")]
mod model;
mod overhead;
mod pattern;
mod tier;
mod tiered;
#[cfg(feature = "disk")]
mod write_behind;
