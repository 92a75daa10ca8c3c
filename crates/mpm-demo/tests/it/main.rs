//! Integration tests of `mpm-demo`.

mod readme;
mod server;
