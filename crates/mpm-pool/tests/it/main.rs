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
