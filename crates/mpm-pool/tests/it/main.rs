//! Integration tests of `mpm-pool` that need no server; those against PostgreSQL and Redis are
//! in `tests/services`.

mod adapters;
mod basic;
mod breaker;
mod faults;
mod keyed;
mod keyed_faults;
mod leak;
mod metrics;
mod test_manager;

/// Counts allocations per thread, so that tests can show that returning an object allocates
/// nothing.
#[global_allocator]
static ALLOC: mpm_metrics::CountingAllocator = mpm_metrics::CountingAllocator::system();

/// A capacity for tests: `n` must not be zero.
pub(crate) fn nz(n: usize) -> std::num::NonZeroUsize {
    std::num::NonZeroUsize::new(n).expect("a capacity above zero")
}
