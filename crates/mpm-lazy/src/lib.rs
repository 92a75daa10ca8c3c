//! Lazy values, lazy service registries, hot-swappable handles and configuration parsed on demand.
//!
//! **Status: not yet implemented.** This crate is a placeholder in the mpm workspace; it exports
//! nothing yet and claims no capability. See the project README for the crates that are ready.
//!
//! It sits on floor 1 of the workspace: it may depend on `mpm-metrics` and never on another
//! floor-1 crate (see `docs/ARCHITECTURE.md`).
//!
//! ```
//! // The crate links; its API arrives with its own issue.
//! use mpm_lazy as _;
//! ```
//!
//! Minimum supported Rust version: 1.95.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]
