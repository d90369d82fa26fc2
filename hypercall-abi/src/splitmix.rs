//! SplitMix64: the one small deterministic random generator of the project.
//!
//! Not part of Xen's ABI: it lives here because this is the crate the
//! hypervisor's host tests, Dom0 and the guest kernels all share. The
//! randomized sequence tests (the frame table's, the grant table's) and the
//! fuzzing guest draw their operations from it, so that a seed names the
//! same sequence wherever it is replayed. Small, fast and good enough to
//! shuffle operations; not for anything secret.

/// A SplitMix64 generator; the same seed gives the same sequence.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next number of the sequence.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of `items`, or `None` if it is empty.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len() as u64) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn a_seed_names_one_sequence() {
        let mut first = SplitMix64::new(7);
        let mut second = SplitMix64::new(7);
        let mut other = SplitMix64::new(8);
        let a: [u64; 4] = core::array::from_fn(|_| first.next_u64());
        let b: [u64; 4] = core::array::from_fn(|_| second.next_u64());
        let c: [u64; 4] = core::array::from_fn(|_| other.next_u64());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!((0..1000).all(|_| first.below(10) < 10));
    }
}
