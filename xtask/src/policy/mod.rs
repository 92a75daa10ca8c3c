//! A prototype of an adaptive L1 policy for mpm-cache, measured by `cargo xtask trace`.
//!
//! It lives here, beside the trace replays that tune it, until it moves into mpm-cache's
//! `MemoryTier`; see `adaptive.rs` for the design.

mod adaptive;
mod sketch;

use std::hash::{BuildHasherDefault, DefaultHasher};

pub(crate) use adaptive::{Adaptive, Config, MAX_ADMISSION};

/// The hasher of the quick_caches underneath: SipHash with fixed keys, so figures repeat.
pub(crate) type Fixed = BuildHasherDefault<DefaultHasher>;

/// The 64-bit hash of a key that the sketch and the sampling use (splitmix64's finalizer).
#[inline]
pub(crate) fn mix(key: u64) -> u64 {
    let mut z = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
