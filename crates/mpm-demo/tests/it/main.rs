//! Integration tests of `mpm-demo`.

mod server;
