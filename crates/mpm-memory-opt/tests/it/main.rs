//! Integration tests of `mpm-memory-opt`.

mod default_profile;
mod document;
mod metrics;
mod profiles;
mod similarity;
mod store;
