//! Integration tests of `mpm-batch`.
