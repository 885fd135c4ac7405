//! Shared helpers for Thunderhead's benchmarks.
//!
//! The workloads are generated from a fixed seed by a small inline PRNG, so every
//! harness (criterion benches here, side-by-side comparisons later) sees exactly the
//! same keys and values without extra dependencies.

/// SplitMix64: a tiny, fast, well-mixed 64-bit generator (Steele et al. 2014).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` must be nonzero; the slight modulo bias is
    /// irrelevant for benchmarking).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// `n` entries of random bytes, `key_len`-byte keys and `value_len`-byte values, in
/// generation (random) order, deterministically from `seed`.
///
/// Keys are not deduplicated: with 24-byte keys (redb's benchmark shape:
/// `keys_values(seed, 100_000, 24, 150)`) a collision is practically impossible, but
/// with very short keys later entries may overwrite earlier ones.
pub fn keys_values(
    seed: u64,
    n: usize,
    key_len: usize,
    value_len: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let mut key = vec![0; key_len];
            let mut value = vec![0; value_len];
            rng.fill(&mut key);
            rng.fill(&mut value);
            (key, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped() {
        let a = keys_values(7, 100, 24, 150);
        let b = keys_values(7, 100, 24, 150);
        assert_eq!(a, b);
        assert!(a.iter().all(|(k, v)| k.len() == 24 && v.len() == 150));
        assert_ne!(a, keys_values(8, 100, 24, 150));
        let mut keys: Vec<_> = a.iter().map(|(k, _)| k).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 100);
    }
}
