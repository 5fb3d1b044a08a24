//! The seeded pseudo-random number generator of the smoke tests.

/// SplitMix64: small, seedable, and good enough to drive mutations.
///
/// Not for anything secret: the whole point is that a seed replays the same stream, so a
/// smoke test that fails prints its seed and case number and the failure reproduces exactly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose stream is fully determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random byte: the low eight bits of [`Rng::next_u64`].
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }

    /// Uniform (up to the negligible modulo bias) in `0..n`.
    ///
    /// # Panics
    ///
    /// If `n` is 0: there is no number to choose.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One of `items`, chosen uniformly.
    ///
    /// # Panics
    ///
    /// If `items` is empty: there is nothing to choose.
    #[expect(
        clippy::indexing_slicing,
        reason = "below(len) is < len, and an empty slice has already panicked in below"
    )]
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_splitmix64() {
        // The first outputs of SplitMix64 for seed 0 (Steele, Lea and Flood; the reference
        // `splitmix64.c` of Vigna): a smoke test's seed must keep replaying the same cases.
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn a_seed_replays_its_stream_and_other_seeds_differ() {
        let stream = |seed| {
            let mut rng = Rng::new(seed);
            (0..16).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(stream(42), stream(42));
        assert_ne!(stream(42), stream(43));
        // A clone continues the same stream.
        let mut a = Rng::new(7);
        a.next_u64();
        let mut b = a.clone();
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn bytes_are_the_low_bits_of_the_stream() {
        let mut words = Rng::new(9);
        let want: Vec<u8> = (0..5).map(|_| words.next_u64() as u8).collect();
        let mut rng = Rng::new(9);
        assert_eq!(rng.byte(), want[0]);
        assert_eq!(rng.bytes(4), want[1..]);
        assert!(rng.bytes(0).is_empty());
    }

    #[test]
    fn below_stays_in_range_and_reaches_every_value() {
        let mut rng = Rng::new(1);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let n = rng.below(7);
            assert!(n < 7);
            seen[n] = true;
        }
        assert!(seen.iter().all(|&s| s), "{seen:?}");
        assert_eq!(rng.below(1), 0);
    }

    #[test]
    fn pick_returns_every_item() {
        let items = ["a", "b", "c"];
        let mut rng = Rng::new(2);
        let mut seen = [false; 3];
        for _ in 0..200 {
            let item = rng.pick(&items);
            seen[items.iter().position(|i| i == item).unwrap()] = true;
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    #[should_panic]
    fn below_zero_panics() {
        Rng::new(3).below(0);
    }

    #[test]
    #[should_panic]
    fn picking_from_nothing_panics() {
        Rng::new(4).pick::<u8>(&[]);
    }
}
