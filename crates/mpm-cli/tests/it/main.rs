//! Integration tests of the `mpm` binary.
