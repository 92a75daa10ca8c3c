//! Integration tests of `mpm-pool`.
