//! Integration tests of `mpm-lazy`.

mod async_lazy;
mod lazy;
mod registry;
mod shuttle_model;
mod swap;
