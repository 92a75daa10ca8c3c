//! Integration tests of `mpm-pool`.

mod adapters;
mod basic;
mod breaker;
mod faults;
mod keyed;
mod leak;
mod postgres;
mod redis;
mod services;
mod test_manager;

/// Counts allocations per thread, so that tests can show that returning an object allocates
/// nothing.
#[global_allocator]
static ALLOC: mpm_metrics::CountingAllocator = mpm_metrics::CountingAllocator::system();
