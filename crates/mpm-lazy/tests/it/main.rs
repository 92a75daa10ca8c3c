//! Integration tests of `mpm-lazy`.
