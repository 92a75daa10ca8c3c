//! Integration tests of mpm-cache.

mod memory;
