//! Integration tests of `mpm-lazy`.

mod async_lazy;
mod config;
mod field;
mod lazy;
mod registry;
mod shuttle_model;
mod swap;
