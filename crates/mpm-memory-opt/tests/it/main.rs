//! Integration tests of `mpm-memory-opt`.
