//! Integration tests of `mpm-core`.
