//! A small deterministic random number generator (SplitMix64).

/// SplitMix64: fast, tiny and good enough to pick names and tie-breaks
/// deterministically from a seed.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound` must be non-zero; returns 0 otherwise).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        self.next_u64() % bound
    }

    /// `len` characters from the alphabet Kubernetes uses for generated name
    /// suffixes (no vowels, no confusable digits).
    pub(crate) fn name_suffix(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| {
                let i = self.below(crate::sim::hash::SAFE_ALPHABET.len() as u64) as usize;
                char::from(crate::sim::hash::SAFE_ALPHABET[i])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_different_seed_differs() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        let mut c = SplitMix64::new(43);
        let sa: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let sb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let sc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(sa, sb);
        assert_ne!(sa, sc);
    }

    #[test]
    fn suffixes_use_the_safe_alphabet() {
        let mut r = SplitMix64::new(7);
        for _ in 0..200 {
            let s = r.name_suffix(5);
            assert_eq!(s.len(), 5);
            assert!(
                s.bytes()
                    .all(|b| crate::sim::hash::SAFE_ALPHABET.contains(&b)),
                "{s}"
            );
        }
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = SplitMix64::new(1);
        for bound in 1..50u64 {
            for _ in 0..20 {
                assert!(r.below(bound) < bound);
            }
        }
        assert_eq!(r.below(0), 0);
    }
}
