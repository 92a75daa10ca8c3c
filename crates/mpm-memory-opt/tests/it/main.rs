//! Integration tests of `mpm-memory-opt`.

mod document;
mod similarity;
