//! Integration tests of `mpm-pool`.

mod basic;
mod breaker;
mod faults;
mod leak;
mod test_manager;
