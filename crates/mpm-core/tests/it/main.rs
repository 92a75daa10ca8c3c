//! Integration tests of `mpm-core`: the `Mpm` facade hands its registry and the given name
//! to every component, refuses a second component of a kind under one name, and serves what
//! it holds.

mod components;
mod reading;
