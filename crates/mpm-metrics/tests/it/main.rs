//! Integration tests of `mpm-metrics`.
//!
//! The whole binary runs on the crate's [`CountingAllocator`], so any test can check that a
//! code path allocates nothing.

use mpm_metrics::CountingAllocator;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

mod alloc;
mod budget;
mod collector;
mod contract;
mod export;
mod histogram;
mod http;
mod integrations;
mod registry;
mod scope;
mod timer;
