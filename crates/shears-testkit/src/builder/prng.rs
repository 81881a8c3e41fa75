//! A tiny deterministic pseudo-random generator (SplitMix64) for builder weights.
//!
//! Each tensor gets its own stream, seeded from the builder seed and the tensor's name, so a
//! tensor's values do not depend on which other tensors were made before it: adding a layer to a
//! test model leaves the weights of every other layer unchanged.

/// A SplitMix64 stream. Invariant: the same seed always yields the same sequence.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The stream of tensor `name` under builder seed `seed` (FNV-1a of the name mixed in).
    pub fn for_tensor(seed: u64, name: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Rng::new(seed ^ h)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float uniform in `[0, 1)` with 24 random bits.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// A float uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_depend_on_seed_and_name() {
        let take = |mut r: Rng| (0..8).map(|_| r.next_u64()).collect::<Vec<_>>();
        assert_eq!(
            take(Rng::for_tensor(1, "a.weight")),
            take(Rng::for_tensor(1, "a.weight"))
        );
        assert_ne!(
            take(Rng::for_tensor(1, "a.weight")),
            take(Rng::for_tensor(2, "a.weight"))
        );
        assert_ne!(
            take(Rng::for_tensor(1, "a.weight")),
            take(Rng::for_tensor(1, "b.weight"))
        );
    }

    #[test]
    fn uniform_stays_in_range_and_spreads() {
        let mut r = Rng::new(7);
        let v: Vec<f32> = (0..10_000).map(|_| r.uniform(-0.5, 0.25)).collect();
        assert!(v.iter().all(|&x| (-0.5..0.25).contains(&x)));
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        assert!((mean - (-0.125)).abs() < 0.02, "mean {mean}");
    }
}
