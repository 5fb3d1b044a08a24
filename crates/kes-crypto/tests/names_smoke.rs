//! Bounded randomized smoke test of the name and pattern rules (`kes_crypto::names`, spec
//! §2.3), the stable counterpart of the `names` fuzz target (fuzz/fuzz_targets/names.rs): a
//! fixed, seeded stream of random and mutated strings, checked against a reference written
//! straight from the rule's wording. A failure prints the seed and the string.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use kes_crypto::names::{MAX_LEN, is_valid_name, is_valid_pattern};

const SEED: u64 = 0x6b65_735f_6e61_6d65;
const CASES: usize = 20_000;

/// SplitMix64: small, seedable, and good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One character of the name alphabet `0-9 A-Z a-z _ -`.
fn in_alphabet(c: char) -> bool {
    matches!(c, '0'..='9' | 'A'..='Z' | 'a'..='z' | '_' | '-')
}

/// "1 to 80 bytes of `0-9 A-Z a-z _ -`, does not start or end with `-`, and is not `_`."
fn reference_name(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let (Some(&first), Some(&last)) = (chars.first(), chars.last()) else {
        return false;
    };
    s.len() <= MAX_LEN
        && s != "_"
        && first != '-'
        && last != '-'
        && chars.iter().all(|&c| in_alphabet(c))
}

/// "The same rules, except that it may end in one `*`; the empty pattern and `*` are valid."
/// The `-` rules apply to the pattern as written, so `demo-*` is valid and `-*` is not.
fn reference_pattern(s: &str) -> bool {
    if s.is_empty() || s == "*" {
        return true;
    }
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    s.len() <= MAX_LEN
        && s != "_"
        && chars.first() != Some(&'-')
        && chars.last() != Some(&'-')
        && chars
            .iter()
            .enumerate()
            .all(|(i, &c)| in_alphabet(c) || (c == '*' && i + 1 == n))
}

const SEEDS: &[&str] = &[
    "",
    "*",
    "_",
    "-",
    "__",
    "_*",
    "-*",
    "**",
    "a",
    "my-key",
    "my-key_1",
    "my-*",
    "demo-*",
    "m*y",
    "a.b",
    "a/b",
    "ключ",
    "é*",
    "key\u{212a}",
    "my-app-key-2024",
];

/// Characters around the edges of the alphabet, multi-byte ones, and `*`.
const CHARS: &[char] = &[
    'a', 'Z', '0', '9', '_', '-', '*', '.', '/', ' ', '\0', '`', '{', '@', '[', ':', 'é', 'K',
    '\u{212a}', '🔑',
];

fn input(rng: &mut Rng) -> String {
    let mut chars: Vec<char> = rng.pick(SEEDS).chars().collect();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 => {
                let i = rng.below(chars.len() + 1);
                chars.insert(i, *rng.pick(CHARS));
            }
            1 if !chars.is_empty() => {
                let i = rng.below(chars.len());
                chars[i] = *rng.pick(CHARS);
            }
            2 if !chars.is_empty() => {
                chars.remove(rng.below(chars.len()));
            }
            // Grow around the length limit.
            3 => {
                let target = MAX_LEN - 2 + rng.below(5);
                while chars.len() < target {
                    chars.push(*rng.pick(&['x', 'y', '_', '-']));
                }
            }
            _ => chars.push(*rng.pick(CHARS)),
        }
    }
    chars.into_iter().collect()
}

#[test]
fn name_rules_agree_with_reference() {
    let mut rng = Rng(SEED);
    let (mut names, mut patterns) = (0, 0);
    for case in 0..CASES {
        let s = input(&mut rng);
        let name = is_valid_name(&s);
        let pattern = is_valid_pattern(&s);
        assert_eq!(
            name,
            reference_name(&s),
            "seed {SEED:#x} case {case}: is_valid_name({s:?})"
        );
        assert_eq!(
            pattern,
            reference_pattern(&s),
            "seed {SEED:#x} case {case}: is_valid_pattern({s:?})"
        );
        // Every name is also a pattern (the one listing exactly that name).
        assert!(!name || pattern, "name {s:?} is not a pattern");
        names += usize::from(name);
        patterns += usize::from(pattern && !name);
    }
    // The stream holds names, patterns that are not names, and neither.
    assert!(
        names > CASES / 20 && patterns > CASES / 50 && names + patterns < CASES * 9 / 10,
        "{names} names, {patterns} other patterns"
    );
}
