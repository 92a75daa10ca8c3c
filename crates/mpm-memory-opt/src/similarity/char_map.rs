//! A hash map keyed by `char` with a cheap multiplicative hash (the keys are not chosen by an
//! attacker who could profit from collisions: at worst a lookup gets slower).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The hasher of [`CharMap`].
#[derive(Default)]
pub(crate) struct CharHasher(u64);

impl Hasher for CharHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 =
                (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(29) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map from characters.
pub(crate) type CharMap<V> = HashMap<char, V, BuildHasherDefault<CharHasher>>;
