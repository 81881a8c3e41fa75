//! A fast hasher for the builder's small integer keys (dim keys, group signatures).
//!
//! The std SipHash is made to resist adversarial keys; these keys come from the model's own
//! structure and no iteration order is ever observed, so the multiply-rotate scheme of rustc's
//! FxHasher (same constant) is enough and several times cheaper per key.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHasher: `hash = (hash + word) * K`, rotated at the end.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = self.hash.wrapping_add(word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    #[test]
    fn equal_keys_hash_equal_and_neighbours_differ() {
        let b = BuildHasherDefault::<FxHasher>::default();
        let h = |v: &[u32]| b.hash_one(v);
        assert_eq!(h(&[1, 2, 3]), h(&[1, 2, 3]));
        assert_ne!(h(&[1, 2, 3]), h(&[1, 2, 4]));
        assert_ne!(h(&[1, 2]), h(&[2, 1]));
        let mut m: FxHashMap<(u32, usize), u32> = FxHashMap::default();
        for i in 0..1000u32 {
            m.insert((i, i as usize % 7), i);
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m[&(500, 500 % 7)], 500);
        let mut h = FxHasher::default();
        (1u32, 2usize).hash(&mut h);
        assert_ne!(h.finish(), FxHasher::default().finish());
    }
}
