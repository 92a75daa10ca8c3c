//! Criterion benchmarks of mpm, each beside the peer a user would otherwise pick, in the same
//! group and run. Run them with `cargo xtask bench` (or `cargo xtask bench --quick`).
//!
//! This crate has no library code; the benchmarks live in `benches/`.
//!
//! ```
//! // Nothing to call: see the bench targets.
//! use mpm_benches as _;
//! ```
#![forbid(unsafe_code)]
