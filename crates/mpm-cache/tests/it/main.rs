//! Integration tests of `mpm-cache`.
