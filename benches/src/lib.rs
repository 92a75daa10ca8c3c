//! Criterion benchmarks of mpm, each beside the peer a user would otherwise pick, in the same
//! group and run, and the operations behind the instruction-count budgets.
//!
//! Run the benchmarks with `cargo xtask bench` (or `cargo xtask bench --quick`); they live in
//! `benches/`, and `benches/comparisons.toml` declares which of them are compared. The
//! [`ops`] module holds one deterministic operation per crate feature that
//! `cargo xtask budgets` counts instructions of under callgrind, through the `mpm-ops` binary.
//!
//! ```
//! let op = mpm_benches::ops::find("lazy.get").expect("declared");
//! (op.run)(10);
//! ```
#![forbid(unsafe_code)]

pub mod ops;
pub mod rounds;
