//! Integration tests of `mpm-lazy`.

mod async_lazy;
// The configuration tests read TOML and YAML files.
#[cfg(all(feature = "toml", feature = "yaml"))]
mod config;
mod config_formats;
mod field;
mod lazy;
mod metrics;
mod registry;
mod shuttle_model;
mod swap;
