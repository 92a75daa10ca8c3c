//! Integration tests of `mpm-cli`: the `mpm` binary on temporary memories directories.

mod demo;
mod memory;
