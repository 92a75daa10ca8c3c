//! Integration tests of mpm-cache.

mod bus;
mod load;
mod memory;
mod pattern;
mod tiered;
