//! Integration tests of mpm-cache.

use mpm_metrics::CountingAllocator;

// Counts allocations per thread, for the L1 memory-overhead test.
#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

mod bus;
mod bypass;
mod damage;
mod disk;
mod flight;
mod kill;
mod load;
mod memory;
mod metrics;
mod model;
mod overhead;
mod pattern;
mod tier;
mod tiered;
